"""The device server's base: listening, lifecycle, connections, service tasks, informs.

asyncio layer. :class:`ServerBase` knows nothing about particular requests:
it accepts connections (:class:`~aiokatcp._server_conn.ClientConnection`),
admits every request at one point (:meth:`ServerBase.handle_message`, which
hands it to the :class:`~aiokatcp._server_sched.RequestScheduler`), runs the
shutdown sequence, owns the service tasks, sends asynchronous informs to
all clients (:meth:`ServerBase.mass_inform`, callable from any thread) and
bridges Python logging to ``#log`` (:class:`ServerLogHandler`). The
subclass (:class:`aiokatcp.server.DeviceServer`) supplies the handlers by
implementing :meth:`ServerBase._dispatch` and the version informs.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl as _ssl
import threading
from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ._codec import DEFAULT_LIMIT
from ._dialect import encode_time, from_wire, uses_milliseconds
from ._message import Message
from ._protocol_flags import ProtocolFlags
from ._server_conn import ClientConnection
from ._server_sampling import StatusCache
from ._server_sched import RequestContext, RequestScheduler
from ._values import LogLevel, Timestamp

__all__ = ["DEFAULT_MAX_INPUT_BUFFERED", "ServerBase", "ServerLogHandler"]

#: Default server-wide bound on bytes held in unfinished input lines (all connections).
DEFAULT_MAX_INPUT_BUFFERED = 64 * 1024 * 1024

logger = logging.getLogger("aiokatcp.server")

_REQUEST = Message.Type.REQUEST
_INFORM = Message.Type.INFORM


class ServerBase:
    """Listening, connections, request admission, shutdown and service tasks.

    See :class:`aiokatcp.server.DeviceServer` for the parameters.
    """

    disconnect_timeout = 5.0
    #: Listen backlog (connections accepted by the kernel but not yet by the server).
    backlog = 1024
    #: Stack frames kept in the traceback of the ``fail`` reply to a crashed handler.
    tb_limit = 20
    #: Requests started in one pass of the event loop; more wait for the next passes
    #: (in order) while the sockets are polled again (see "Ordering and concurrency").
    REQUEST_BURST = 64
    #: The dialect spoken (``DeviceServerMeta`` sets it from ``PROTOCOL_INFO``).
    _protocol = ProtocolFlags(5, 1, "MIB")

    def __init__(
        self,
        host: str,
        port: int,
        *,
        limit: int = DEFAULT_LIMIT,
        max_pending: int = 100,
        max_backlog: Optional[int] = None,
        loop: Optional[asyncio.AbstractEventLoop] = None,
        sock: Optional[socket.socket] = None,
        ssl: Optional[_ssl.SSLContext] = None,
        max_connections: Optional[int] = None,
        max_input_buffered: int = DEFAULT_MAX_INPUT_BUFFERED,
        idle_timeout: Optional[float] = None,
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError("idle_timeout must be positive")
        self.host = host
        self._port = port
        self.limit = limit
        self.max_pending = max_pending
        self.max_backlog = 2 * limit if max_backlog is None else max_backlog
        self.max_connections = max_connections
        self.max_input_buffered = max_input_buffered
        self.idle_timeout = idle_timeout
        #: Clients disconnected by each limit: "slow" (``max_backlog``), "input"
        #: (``max_input_buffered``), "connections" (``max_connections``), "idle".
        self.disconnect_counts: Dict[str, int] = Counter()
        protocol = self._protocol
        # The dialect at the wire (KATCP v4, no message ids); None/False for plain v5.
        self._millis = protocol if uses_milliseconds(protocol) else None
        self._translate_requests = self._millis is not None or not protocol.message_ids
        self.status_cache = StatusCache(self._millis)
        self._input_total = 0
        self._idle_handle: Optional[asyncio.TimerHandle] = None
        self._loop = loop
        self._sock = sock
        self._ssl = ssl
        self._server: Optional[asyncio.Server] = None
        self._connections: Dict[ClientConnection, None] = {}  # ordered set
        self._scheduler = self._make_scheduler()
        self._service_tasks: List[asyncio.Task[Any]] = []
        self._halting = False
        self._halt_task: Optional[asyncio.Task[None]] = None
        self._stopped: Optional[asyncio.Event] = None
        self._stop_exc: Optional[BaseException] = None
        self._log_level = LogLevel.WARN
        self._loop_thread: Optional[int] = None
        self._new_clients: List[Tuple[ClientConnection, bytes]] = []

    # -- hooks for the subclass ---------------------------------------------------------------

    def _dispatch(self, ctx: RequestContext) -> Any:
        """Run the handler of an admitted request; return its result (maybe awaitable)."""
        raise NotImplementedError

    def _version_connect(self) -> List[List[bytes]]:
        """The arguments of each ``#version-connect`` inform sent to a new client."""
        return []

    def _connect_informs(self) -> Iterable[Message]:
        """The informs a new client gets first (v5: ``#version-connect``, one per role)."""
        return (
            Message._make(_INFORM, "version-connect", args, None)
            for args in self._version_connect()
        )

    # -- properties ----------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the server runs on."""
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                # Read before any loop runs (2.x style: build, then run_until_complete):
                # the current event loop, as 2.x's default of asyncio.get_event_loop().
                self._loop = asyncio.get_event_loop()
        return self._loop

    @property
    def server(self) -> Optional[asyncio.Server]:
        """The listening :class:`asyncio.Server`, or ``None`` if not started."""
        return self._server

    @property
    def sockets(self) -> Tuple[socket.socket, ...]:
        """The listening sockets (empty before :meth:`start`)."""
        if self._server is None:
            return ()
        return tuple(getattr(self._server, "sockets", None) or ())

    @property
    def address(self) -> Tuple[str, int]:
        """Host and port of the first listening socket.

        Raises
        ------
        RuntimeError
            if the server is not started
        """
        sockets = self.sockets
        if not sockets:
            raise RuntimeError("server is not started")
        name = sockets[0].getsockname()
        return (str(name[0]), int(name[1]))

    @property
    def port(self) -> int:
        """Port of the first listening socket (useful with port 0).

        Raises
        ------
        RuntimeError
            if the server is not started
        """
        return self.address[1]

    @port.setter
    def port(self, port: int) -> None:
        # The port to listen on at the next start (as assigning ``port`` did in 2.x).
        self._port = port

    @property
    def service_tasks(self) -> Tuple[asyncio.Task[Any], ...]:
        """The service tasks still running."""
        return tuple(self._service_tasks)

    @property
    def log_level(self) -> LogLevel:
        """Level of the log records sent to clients as ``#log`` (``?log-level``)."""
        return self._log_level

    @log_level.setter
    def log_level(self, level: LogLevel) -> None:
        self._log_level = level

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening.

        Raises
        ------
        RuntimeError
            if the server is already running
        """
        if self._server is not None and not self._halting:
            raise RuntimeError("server is already running")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._halting = False
        self._halt_task = None
        self._stop_exc = None
        self._stopped = asyncio.Event()
        self._scheduler = self._make_scheduler()

        def factory() -> ClientConnection:
            return ClientConnection(self, self.limit)

        if self._sock is not None:
            self._server = await loop.create_server(
                factory, sock=self._sock, backlog=self.backlog, ssl=self._ssl
            )
        else:
            self._server = await loop.create_server(
                factory, self.host, self._port, backlog=self.backlog, ssl=self._ssl
            )
        if self.idle_timeout is not None:
            self._idle_handle = loop.call_later(self._idle_interval(), self._idle_sweep)

    async def stop(self, cancel: bool = True) -> None:
        """Shut down (see :meth:`halt`) and wait for it (see :meth:`join`).

        Parameters
        ----------
        cancel
            Cancel requests in progress (each is replied ``fail request
            cancelled``); otherwise wait for them to finish.
        """
        self.halt(cancel)
        await self.join()

    def halt(self, cancel: bool = True) -> asyncio.Task[None]:
        """Start shutting down and return the task doing it.

        Shutdown order: stop listening and ignore requests arriving from now
        on; cancel (or, with ``cancel=False``, wait for) the requests in
        progress, each of which gets exactly one reply; send ``#disconnect``
        to every client and close the connections; run :meth:`on_stop`;
        cancel the service tasks.
        """
        if self._halt_task is None:
            self._halting = True
            self._halt_task = self.loop.create_task(self._halt(cancel))
        return self._halt_task

    async def _halt(self, cancel: bool) -> None:
        me = asyncio.current_task()
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        try:
            if self._server is not None:
                self._server.close()
            await self._scheduler.shutdown(cancel)
            await self._close_connections()
            try:
                await self.on_stop()
            except Exception as exc:
                logger.exception("Exception in on_stop")
                if self._stop_exc is None:
                    self._stop_exc = exc
            service = [task for task in self._service_tasks if task is not me]
            for task in service:
                task.cancel()
            if service:
                await asyncio.wait(service)
            if self._server is not None:
                await self._server.wait_closed()
        finally:
            if self._stopped is None:
                self._stopped = asyncio.Event()
            self._stopped.set()

    async def _close_connections(self) -> None:
        conns = list(self._connections)
        farewell = bytes(Message.inform("disconnect", "server shutting down"))
        for conn in conns:
            if not conn.is_closing():
                conn.write_bytes(farewell)
                conn.close()
        waiters = [asyncio.ensure_future(conn.wait_closed()) for conn in conns]
        if not waiters:
            return
        _, late = await asyncio.wait(waiters, timeout=self.disconnect_timeout)
        if late:
            for conn in conns:
                if not conn.closed:
                    conn.logger.warning("Client did not take its last data in time; aborting")
                    conn.abort()
            await asyncio.wait(late)

    async def join(self) -> None:
        """Wait until the server has stopped.

        Raises
        ------
        Exception
            the exception of a failed service task or of :meth:`on_stop`
        """
        if self._stopped is None:
            self._stopped = asyncio.Event()
        await self._stopped.wait()
        task = self._halt_task
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait([task])
        if self._stop_exc is not None:
            raise self._stop_exc

    async def on_stop(self) -> None:
        """Hook: called during shutdown, after the connections are closed."""

    def add_service_task(self, task: asyncio.Task[Any]) -> None:
        """Attach a background task to the server's lifetime.

        It is cancelled when the server stops. If it fails, the error is
        logged, the server halts, and the exception is raised again by
        :meth:`join`/:meth:`stop`. A task that finishes normally is dropped.
        """
        self._service_tasks.append(task)
        task.add_done_callback(self._service_task_done)

    def _service_task_done(self, task: asyncio.Task[Any]) -> None:
        try:
            self._service_tasks.remove(task)
        except ValueError:
            pass
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            logger.error("Service task %s failed; halting the server", task, exc_info=exc)
            if self._stop_exc is None:
                self._stop_exc = exc
            self.halt()

    # -- connections ----------------------------------------------------------------------------

    def _connection_made(self, conn: ClientConnection) -> None:
        conn.logger.info("Client connected")
        if self._halting:
            conn.write_message(Message.inform("disconnect", "server shutting down"))
            conn.close()
            return
        max_connections = self.max_connections
        if max_connections is not None and len(self._connections) >= max_connections:
            self.disconnect_counts["connections"] += 1
            conn.drop(
                f"too many connections (max_connections is {max_connections})",
                f"Refusing client: {max_connections} connections already (max_connections)",
            )
            return
        conn.write_messages(self._connect_informs())
        if self._connections:
            if not self._new_clients:
                self.loop.call_soon(self._announce_clients)
            line = bytes(Message.inform("client-connected", conn.address))
            self._new_clients.append((conn, line))
        self._connections[conn] = None
        if self._scheduler.paused:
            conn.set_server_paused(True)

    def _announce_clients(self) -> None:
        """Send ``#client-connected`` for this loop iteration's new clients, one write each."""
        new = self._new_clients
        self._new_clients = []
        new_order = {conn: i for i, (conn, _) in enumerate(new)}
        for conn in list(self._connections):
            # A client hears about those that connected after it.
            start = new_order.get(conn, -1) + 1
            data = b"".join(line for other, line in new[start:] if other is not conn)
            if data:
                conn.write_async_bytes(data)

    def _connection_lost(self, conn: ClientConnection, exc: Optional[Exception]) -> None:
        if exc is not None:
            conn.logger.info("Connection lost: %s", exc)
        else:
            conn.logger.info("Connection closed")
        self._connections.pop(conn, None)
        self._scheduler.discard(conn)

    def _input_changed(self, conn: ClientConnection, delta: int) -> None:
        """Account a change of `conn`'s unfinished input; enforce ``max_input_buffered``."""
        total = self._input_total + delta
        self._input_total = total
        if delta > 0 and total > self.max_input_buffered:
            victim = max(self._connections, key=lambda c: c.buffered, default=conn)
            held = victim.buffered
            self.disconnect_counts["input"] += 1
            victim.drop(
                "too much unfinished input: server-wide input bound exceeded",
                f"Disconnecting the client holding the most unfinished input ({held} bytes): "
                f"the server holds {total} bytes, over max_input_buffered "
                f"({self.max_input_buffered})",
            )

    def _idle_interval(self) -> float:
        assert self.idle_timeout is not None
        return max(self.idle_timeout / 4, 0.001)

    def _idle_sweep(self) -> None:
        """Drop the clients idle for ``idle_timeout`` (one timer for the whole server)."""
        timeout = self.idle_timeout
        if timeout is None or self._halting:
            self._idle_handle = None
            return
        loop = self.loop
        now = loop.time()
        for conn in list(self._connections):
            if not conn.inflight and now - conn.last_input >= timeout and not conn.dropping:
                self.disconnect_counts["idle"] += 1
                conn.drop(
                    f"idle timeout: nothing received for {timeout:g} s",
                    f"Disconnecting idle client (nothing received for {timeout:g} s)",
                )
        self._idle_handle = loop.call_later(self._idle_interval(), self._idle_sweep)

    def _eof_received(self, conn: ClientConnection) -> bool:
        # Answer what the client already sent, then close.
        conn.half_closed()
        return True

    def _make_scheduler(self) -> RequestScheduler:
        return RequestScheduler(
            self.max_pending,
            self._dispatch,
            self._set_reading,
            self.tb_limit,
            burst=max(1, self.REQUEST_BURST),
            # (Requests read but waiting for their turn are input the server holds too.)
            max_queued_bytes=max(1, self.max_input_buffered // 4),
        )

    def _set_reading(self, resume: bool) -> None:
        for conn in self._connections:
            conn.set_server_paused(not resume)

    @property
    def connections(self) -> Tuple[ClientConnection, ...]:
        """The client connections, in the order they connected."""
        return tuple(self._connections)

    # -- requests -------------------------------------------------------------------------------

    def handle_message(self, conn: ClientConnection, msg: Message) -> None:
        """Entry point for every message from a client: the one admission point of requests.

        Replies and informs from clients are ignored, and so is everything
        that arrives once shutdown has begun (it gets no reply). Each other
        request is handed to the scheduler, which runs it as its own task
        (or queues it while ``max_pending`` requests are in progress).
        """
        if msg.mtype is not _REQUEST or self._halting or conn.dropping:
            return
        if self._translate_requests:
            msg = self._request_from_wire(msg)
        self._scheduler.submit(RequestContext(conn, msg))

    def _request_from_wire(self, msg: Message) -> Message:
        """A request in the device's dialect as the handlers see it (v5, seconds).

        Without flag ``I`` the id is dropped, so no reply or inform carries one.
        """
        protocol = self._protocol
        if msg.mid is not None and not protocol.message_ids:
            msg = Message._make(msg.mtype, msg.name, msg.arguments, None)
        return from_wire(protocol, msg)

    # -- asynchronous informs --------------------------------------------------------------------

    def mass_inform(self, name: str, *args: Any) -> None:
        """Send an asynchronous inform to every client (slow clients are dropped).

        May be called from any thread.
        """
        thread = self._loop_thread
        if thread is not None and thread != threading.get_ident():
            self.loop.call_soon_threadsafe(self.mass_inform, name, *args)
            return
        data = bytes(Message.inform(name, *args))
        for conn in list(self._connections):
            conn.write_async_bytes(data)


class ServerLogHandler(logging.Handler):
    """Forward Python log records to all clients as ``#log`` informs.

    Records are filtered by the server's ``?log-level``; records from
    ``aiokatcp`` loggers are never forwarded (sending a ``#log`` may
    itself log, which would loop). Python levels map to the nearest
    KATCP level at or below them. Records from other threads are passed
    to the server's loop thread (see :meth:`ServerBase.mass_inform`).

    Parameters
    ----------
    server
        The server whose clients get the records.
    """

    __module__ = "aiokatcp.server"

    def __init__(self, server: ServerBase) -> None:
        super().__init__()
        self.server = server
        self.setFormatter(logging.Formatter("%(filename)s:%(lineno)d: %(message)s"))

    def filter(self, record: logging.LogRecord) -> bool:  # type: ignore[override,unused-ignore]
        name = record.name
        if name == "aiokatcp" or name.startswith("aiokatcp."):
            return False
        level = self.server.log_level
        if level == LogLevel.OFF or LogLevel.from_python(record.levelno) < level:
            return False
        return bool(super().filter(record))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.server.mass_inform(
                "log",
                LogLevel.from_python(record.levelno),
                _log_time(self.server, record.created),
                record.name,
                self.format(record),
            )
        except Exception:
            self.handleError(record)


def _log_time(server: ServerBase, created: float) -> Any:
    """The timestamp argument of a ``#log`` (whole milliseconds on a v4 device)."""
    millis = server._millis
    return Timestamp(created) if millis is None else encode_time(millis, created)
