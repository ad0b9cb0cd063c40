"""The KATCP device server: lifecycle, request scheduling, standard requests, log bridge.

asyncio layer. This module owns :class:`DeviceServer` and its metaclass
:class:`DeviceServerMeta` (which turns ``request_*`` methods, including
those of plain mixins such as the sensor requests, into typed handlers via
:mod:`aiokatcp._handlers`). Per-connection state (:class:`ClientConnection`)
and the handler's view of a request (:class:`RequestContext`) live in
:mod:`aiokatcp._server_conn`; the sensor requests live in
:mod:`aiokatcp._server_sensors`.

Scheduling. Requests from one connection run in order (the next one starts
once the previous one has replied); requests from different connections run
concurrently. ``max_pending`` bounds the requests in progress over all
connections; when it is reached, a connection stops reading as soon as it
holds a request that cannot start (so each holds at most one chunk of
input), and connections with work queue up in a FIFO, served round-robin as
slots free. Pausing lazily like this (rather than pausing every idle
connection at once) means that a connection whose requests have not been
read yet still joins the line, so none is starved, and no slot change costs
a pass over all connections.

Execution. A plain ``def`` handler runs at once, inside ``data_received``.
An ``async def`` handler is awaited by the connection's *worker*: a task
created when a connection has awaitable work and ended when it has none,
which goes on to run the connection's next queued requests itself. Handlers
thus run in a real task (``current_task()``, ``asyncio.timeout`` and task
groups work), while a burst of pipelined requests costs one task, not one
per request. A connection's writes are gathered and written once per loop
iteration.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import threading
import types
from collections import deque
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    List,
    Optional,
    Tuple,
)

from ._codec import DEFAULT_LIMIT
from ._handlers import collect_handlers, get_request_timeout_hint, request_timeout_hint
from ._message import Message
from ._server_conn import ClientConnection, RequestContext, resume_coroutine
from ._server_requests import ServerLogHandler, StandardRequests
from ._server_sensors import SensorRequests
from ._typeinfo import encode
from ._values import LogLevel
from .connection import _log_message
from .exceptions import FailReply, InvalidReply

__all__ = [
    "ClientConnection",
    "DeviceServer",
    "DeviceServerMeta",
    "RequestContext",
    "request_timeout_hint",
]

logger = logging.getLogger(__name__)

_REQUEST = Message.Type.REQUEST
_INFORM = Message.Type.INFORM
_OK = b"ok"
_FAIL = b"fail"
_INVALID = b"invalid"
#: Requests one connection may start in one go before letting other work run.
_BURST = 128
#: Corked output above which it is written out early (so write back-pressure can act).
_CORK_FLUSH = 65536
_SHUTTING_DOWN = "server is shutting down"
_CoroutineType = types.CoroutineType
_coro_state = inspect.getcoroutinestate
_CREATED = inspect.CORO_CREATED


class DeviceServerMeta(type):
    """Metaclass collecting ``request_*`` methods into ``_request_handlers``.

    Every function named ``request_<x>`` anywhere in the MRO (plain mixins
    included) handles ``?<x>`` (``_`` becomes ``-``). Each must have a
    docstring (its ``?help`` text), or class creation fails with
    :class:`TypeError`. Arguments are decoded from the annotations (see
    :func:`aiokatcp.connection.wrap_handler`).
    """

    def __init__(cls, name: str, bases: Tuple[type, ...], namespace: Dict[str, Any]) -> None:
        super().__init__(name, bases, namespace)
        handlers = collect_handlers(cls, "request_", 2, require_docstring=True)
        cls._request_handlers = handlers
        cls._request_timeout_hints = {
            name: hint
            for name, handler in handlers.items()
            if (hint := get_request_timeout_hint(handler))  # 0 means "no hint"
        }


class DeviceServer(SensorRequests, StandardRequests, metaclass=DeviceServerMeta):
    """A KATCP device server.

    Subclass it, set :attr:`VERSION` and :attr:`BUILD_STATE`, and add
    ``request_*`` methods. Subclass hooks: :meth:`on_stop`,
    :meth:`restart`, :meth:`unhandled_request`, :attr:`extra_versions`.

    Parameters
    ----------
    host
        Address to listen on (empty string: all interfaces).
    port
        Port to listen on (0: pick a free port; see :attr:`sockets`).
    limit
        Maximum request line length in bytes.
    max_pending
        Maximum number of requests in progress over all connections; when it
        is reached, every connection stops being read once it has a request
        that cannot start, and connections get free slots in turn.
    max_backlog
        Maximum unsent bytes per client when an asynchronous message is
        queued; a client over it is disconnected. Default ``2 * limit``.
    loop
        Deprecated, kept for compatibility; the running loop is used.
    sock
        An already-bound listening socket to serve on (`host` and `port`
        are then ignored).

    Attributes
    ----------
    extra_versions : dict
        Extra ``role -> (version, [build-state])`` entries reported in
        ``#version-connect`` and ``?version-list``.
    disconnect_timeout : float
        Seconds a closing connection may take to send its last data before
        it is aborted.
    """

    VERSION: str
    BUILD_STATE: str
    disconnect_timeout = 5.0
    #: Listen backlog (connections accepted by the kernel but not yet by the server).
    backlog = 1024
    LogHandler = ServerLogHandler

    _request_handlers: Dict[str, Callable[..., Any]]
    _request_timeout_hints: Dict[str, float]

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
    ) -> None:
        for attr in ("VERSION", "BUILD_STATE"):
            if not isinstance(getattr(self, attr, None), str):
                raise TypeError(f"{type(self).__name__} must define a class attribute {attr}")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.host = host
        self.port = port
        self.limit = limit
        self.max_pending = max_pending
        self.max_backlog = 2 * limit if max_backlog is None else max_backlog
        self.extra_versions: Dict[str, Tuple[str, ...]] = {}
        self._loop = loop
        self._sock = sock
        self._server: Optional[asyncio.AbstractServer] = None
        self._connections: Dict[ClientConnection, None] = {}  # ordered set
        self._pending = 0
        self._waiting: Deque[ClientConnection] = deque()
        self._servicing = False
        self._workers: Dict[asyncio.Task[Any], ClientConnection] = {}
        # Workers not started yet: their first request, its awaitable and their token.
        self._unstarted: Dict[asyncio.Task[Any], Tuple[RequestContext, Any, object]] = {}
        self._service_tasks: List[asyncio.Task[Any]] = []
        self._halting = False
        self._halt_task: Optional[asyncio.Task[None]] = None
        self._stopped: Optional[asyncio.Event] = None
        self._stop_exc: Optional[BaseException] = None
        self._log_level = LogLevel.WARN
        self._loop_thread: Optional[int] = None
        self._new_clients: List[Tuple[ClientConnection, bytes]] = []
        self._init_sensors()

    # -- properties ----------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the server runs on."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def server(self) -> Optional[asyncio.AbstractServer]:
        """The listening :class:`asyncio.Server`, or ``None`` if not started."""
        return self._server

    @property
    def sockets(self) -> Tuple[socket.socket, ...]:
        """The listening sockets (empty before :meth:`start`); use them to find the port."""
        if self._server is None:
            return ()
        return tuple(getattr(self._server, "sockets", None) or ())

    @property
    def service_tasks(self) -> Tuple[asyncio.Task[Any], ...]:
        """The service tasks still running."""
        return tuple(self._service_tasks)

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

        def factory() -> ClientConnection:
            return ClientConnection(self, self.limit)

        # A deep accept queue: hundreds of clients connecting at once (e.g. after a
        # restart) should not see SYNs dropped and retried a second later.
        if self._sock is not None:
            self._server = await loop.create_server(factory, sock=self._sock, backlog=self.backlog)
        else:
            self._server = await loop.create_server(
                factory, self.host, self.port, backlog=self.backlog
            )

    async def stop(self, cancel: bool = True) -> None:
        """Shut down (see :meth:`halt`) and wait for it (see :meth:`join`).

        Parameters
        ----------
        cancel
            Cancel requests in progress (each is replied ``fail``); otherwise
            wait for them to finish.
        """
        self.halt(cancel)
        await self.join()

    def halt(self, cancel: bool = True) -> asyncio.Task[None]:
        """Start shutting down and return the task doing it.

        Shutdown order: stop listening; reply ``fail`` to requests not yet
        started; cancel (or, with ``cancel=False``, wait for) requests in
        progress; send ``#disconnect`` to every client and close the
        connections; run :meth:`on_stop`; cancel the service tasks.
        """
        if self._halt_task is None:
            self._halting = True
            self._halt_task = self.loop.create_task(self._halt(cancel))
        return self._halt_task

    async def _halt(self, cancel: bool) -> None:
        me = asyncio.current_task()
        try:
            if self._server is not None:
                self._server.close()
            # Requests in progress finish first (or are cancelled), then the ones queued
            # behind them are answered ``fail`` by _pump, so replies keep request order.
            tasks = list(self._workers)
            if tasks:
                if cancel:
                    for task in tasks:
                        task.cancel()
                await asyncio.wait(tasks)
            for conn in self._waiting:
                conn._waiting = False
            self._waiting.clear()
            for conn in list(self._connections):
                self._fail_queued(conn)
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
        for conn in conns:
            if not conn._closed:
                conn.logger.warning("Client did not take its last data in time; aborting")
                conn.abort()
        if late:
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
        conn.write_messages(
            Message._make(_INFORM, "version-connect", list(args), None)
            for args in self._version_args()
        )
        if self._connections:
            if not self._new_clients:
                self.loop.call_soon(self._announce_clients)
            line = bytes(Message.inform("client-connected", conn.address))
            self._new_clients.append((conn, line))
        self._connections[conn] = None

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
        conn._queue.clear()
        if conn._waiting:
            conn._waiting = False
            try:
                self._waiting.remove(conn)
            except ValueError:
                pass
        self._sensors_client_closed(conn)

    def _eof_received(self, conn: ClientConnection) -> bool:
        # Finish (and answer) what the client already sent, then close.
        conn._eof = True
        if conn._busy is None and conn._worker is None and not conn._queue:
            conn.close()
        return True

    # -- request scheduling ---------------------------------------------------------------------

    def handle_message(self, conn: ClientConnection, msg: Message) -> None:
        """Entry point for every message from a client (only requests are acted on)."""
        if msg.mtype is not _REQUEST or conn._dropping:
            return  # replies and informs from clients are ignored
        if self._halting:
            self._reply_error(conn, msg, _FAIL, _SHUTTING_DOWN)
            return
        conn._queue.append(msg)
        if conn._busy is None and conn._worker is None:
            self._pump(conn)
        else:
            conn.pause_reading()  # it has a request it cannot start yet

    def _may_start(self, conn: ClientConnection) -> bool:
        """Whether `conn` may start its next request now (if not, arrange to be called back).

        Must be called with a non-empty queue and no request in progress on `conn`.
        """
        if conn._closed:
            return False
        if conn._corked_size >= _CORK_FLUSH:
            conn._flush_corked()
        if conn._write_paused:
            return False  # resume_writing calls _connection_ready
        if self._pending >= self.max_pending or (self._waiting and not self._servicing):
            # No free slot, or others are waiting for one: take a place in the line.
            if not conn._waiting:
                conn._waiting = True
                self._waiting.append(conn)
            return False
        if conn._burst >= _BURST:
            conn._schedule_continue()
            return False
        conn._burst += 1
        return True

    def _run_queued(self, conn: ClientConnection) -> Optional[Tuple[RequestContext, Any]]:
        """Run `conn`'s queued requests while it may, until one returns an awaitable.

        Returns that request and its awaitable, or ``None`` when there is
        nothing more to do now.
        """
        queue = conn._queue
        if self._halting:
            self._fail_queued(conn)
        while queue and self._may_start(conn):
            ctx = RequestContext(conn, queue.popleft())
            awaitable = self._begin(ctx)
            if awaitable is not None:
                return ctx, awaitable
        return None

    def _pump(self, conn: ClientConnection) -> None:
        """Start `conn`'s queued requests while it may; hand the first awaitable to a worker."""
        started = self._run_queued(conn)
        if started is not None:
            ctx, awaitable = started
            # The token marks the worker in charge of `conn` (set first: with an
            # eager task factory the worker starts running inside create_task).
            token = conn._worker = object()
            worker = self.loop.create_task(self._worker(ctx, awaitable, token))
            if not worker.done():
                self._workers[worker] = conn
                self._unstarted[worker] = (ctx, awaitable, token)
                worker.add_done_callback(self._worker_done)
        self._pump_done(conn)

    def _pump_done(self, conn: ClientConnection) -> None:
        if conn._queue:
            conn.pause_reading()
        else:
            conn.resume_reading()
            if conn._eof and conn._busy is None and conn._worker is None:
                conn.close()

    def _begin(self, ctx: RequestContext) -> Any:
        """Start a request: call its handler; finish it unless it returned an awaitable.

        Returns the awaitable (to be awaited by a worker), or ``None`` if done.
        """
        conn = ctx.conn
        msg = ctx.req
        conn._busy = ctx
        self._pending += 1
        try:
            handler = self._request_handlers.get(msg.name)
            if handler is None:
                result = self.unhandled_request(ctx, msg)
            else:
                result = handler(self, ctx, msg)
            if result is not None and hasattr(result, "__await__"):
                ctx._inline = False
                return result
        except asyncio.CancelledError:
            self._request_cancelled(ctx)
        except Exception as exc:
            self._request_failed(ctx, exc)
        else:
            self._request_succeeded(ctx, result)
        self._finish(ctx)
        return None

    def _finish(self, ctx: RequestContext) -> None:
        ctx._done = True
        self._pending -= 1
        conn = ctx.conn
        if conn._busy is ctx:
            conn._busy = None

    async def _worker(self, ctx: RequestContext, awaitable: Any, token: object) -> None:
        """Await request handlers of one connection, in order, inside one task.

        Handlers thus run in a real task (``asyncio.current_task()``, timeouts
        and task groups work), but one task serves a whole burst of pipelined
        requests instead of one task per request.
        """
        conn = ctx.conn
        me = asyncio.current_task()
        if me is not None and self._unstarted.pop(me, None) is not None:
            # Started, so _worker_done has nothing to do: without it, the task's end
            # costs no extra loop iteration.
            me.remove_done_callback(self._worker_done)
        # The connection stays corked while this step runs requests, so their replies
        # leave in one write when the step ends (or a handler really waits), not one
        # write per request nor one loop iteration later.
        conn.cork()
        corked = True
        try:
            while True:
                cancelled = False
                error: Optional[Exception] = None
                try:
                    if type(awaitable) is _CoroutineType and _coro_state(awaitable) == _CREATED:
                        # Run the handler's first step here: most handlers finish in it.
                        try:
                            yielded = awaitable.send(None)
                        except StopIteration as stop:
                            result = stop.value
                        else:
                            conn.uncork()  # it waits: send what this step wrote first
                            corked = False
                            result = await resume_coroutine(awaitable, yielded)
                    else:
                        if corked:
                            conn.uncork()
                            corked = False
                        result = await awaitable
                except asyncio.CancelledError:
                    cancelled = True
                except Exception as exc:
                    error = exc
                if not corked:
                    conn.cork()
                    corked = True
                ctx._inline = True
                if cancelled:
                    self._request_cancelled(ctx)
                    if me is not None and hasattr(me, "uncancel") and not self._halting:
                        me.uncancel()  # only this request was cancelled
                elif error is not None:
                    self._request_failed(ctx, error)
                else:
                    self._request_succeeded(ctx, result)
                self._finish(ctx)
                if conn._worker is not token:
                    return  # detached after an early reply: the queue has moved on
                started = self._run_queued(conn)
                if started is None:
                    conn._worker = None
                    self._pump_done(conn)
                    return
                ctx, awaitable = started
        finally:
            if corked:
                conn.uncork()
            self._workers.pop(me, None)  # type: ignore[arg-type]
            if conn._worker is token:
                conn._worker = None
            if not self._halting:
                self._connection_ready(conn)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        """Clean up after a worker that was cancelled before it could start."""
        started = self._unstarted.pop(task, None)
        if started is None:
            return
        ctx, awaitable, token = started
        if ctx._done:
            return  # it ran (and answered its first request)
        self._workers.pop(task, None)
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        ctx._inline = True
        self._request_cancelled(ctx)
        self._finish(ctx)
        conn = ctx.conn
        if conn._worker is token:
            conn._worker = None
        if not self._halting:
            self._connection_ready(conn)

    def _request_replied(self, ctx: RequestContext) -> None:
        """Called by the context when its reply is written."""
        conn = ctx.conn
        if conn._busy is ctx:
            conn._busy = None
            if not ctx._inline:
                # Replied from inside an awaited handler: if it is still running once
                # this loop iteration is over, let the connection go on without it.
                self.loop.call_soon(self._detach, ctx)

    def _detach(self, ctx: RequestContext) -> None:
        conn = ctx.conn
        if not ctx._done and conn._worker is not None and conn._busy is None:
            conn._worker = None  # the old worker finishes its handler and then stops
            self._connection_ready(conn)

    def _connection_ready(self, conn: ClientConnection) -> None:
        """`conn` may be able to start another request, or a slot was freed: schedule."""
        if (
            conn._queue
            and conn._busy is None
            and conn._worker is None
            and not conn._waiting
            and not conn._closed
        ):
            conn._waiting = True
            self._waiting.append(conn)
        self._service_waiting()
        if conn._eof and conn._busy is None and conn._worker is None and not conn._queue:
            conn.close()

    def _service_waiting(self) -> None:
        """Give free slots to waiting connections, first come first served."""
        if self._servicing:
            return
        self._servicing = True
        try:
            waiting = self._waiting
            while waiting and self._pending < self.max_pending:
                conn = waiting.popleft()
                conn._waiting = False
                if conn._busy is None and conn._worker is None:
                    conn._burst = 0
                    conn.cork()
                    try:
                        self._pump(conn)
                    finally:
                        conn.uncork()
        finally:
            self._servicing = False

    def _continue_connection(self, conn: ClientConnection) -> None:
        """A connection that used up its burst gets another turn."""
        conn._continue_scheduled = False
        conn._burst = 0
        self._connection_ready(conn)

    def _fail_queued(self, conn: ClientConnection) -> None:
        queue = conn._queue
        while queue:
            self._reply_error(conn, queue.popleft(), _FAIL, _SHUTTING_DOWN)

    # -- replies -------------------------------------------------------------------------------

    def _reply_error(self, conn: ClientConnection, req: Message, code: bytes, text: str) -> None:
        conn.write_message(
            Message._make(Message.Type.REPLY, req.name, [code, text.encode()], req.mid)
        )

    def _request_succeeded(self, ctx: RequestContext, result: Any) -> None:
        if ctx._replied:
            if result is not None:
                self._request_failed(
                    ctx,
                    RuntimeError(f"handler for {ctx.req.name} replied and also returned a value"),
                )
            return
        try:
            if result is None:
                args = [_OK]
            elif type(result) is tuple:
                args = [_OK, *[encode(value) for value in result]]
            else:
                args = [_OK, encode(result)]
        except Exception as exc:  # e.g. a value of an unregistered type
            self._request_failed(ctx, exc)
        else:
            ctx._send_reply(args)

    def _request_failed(self, ctx: RequestContext, exc: BaseException) -> None:
        if isinstance(exc, FailReply):
            code, text = _FAIL, str(exc)
        elif isinstance(exc, InvalidReply):
            code, text = _INVALID, str(exc)
        else:
            ctx.logger.exception("Uncaught exception in handler for %s", ctx.req.name, exc_info=exc)
            code, text = _FAIL, f"uncaught exception: {type(exc).__name__}: {exc}"
        if ctx._replied:
            ctx.conn.write_message(
                _log_message(
                    "error",
                    __name__,
                    f"error in handler for {ctx.req.name} after it had replied: {text}",
                )
            )
        else:
            ctx._send_reply([code, text.encode()])

    def _request_cancelled(self, ctx: RequestContext) -> None:
        text = f"request cancelled: {_SHUTTING_DOWN}" if self._halting else "request cancelled"
        if not ctx._replied:
            ctx._send_reply([_FAIL, text.encode()])

    async def unhandled_request(self, ctx: RequestContext, req: Message) -> None:
        """Hook for requests without a handler; override for dynamic dispatch.

        Raises
        ------
        InvalidReply
            by default (``unknown request <name>``)
        """
        raise InvalidReply(f"unknown request {req.name}")

    # -- asynchronous informs --------------------------------------------------------------------

    def mass_inform(self, name: str, *args: Any) -> None:
        """Send an asynchronous inform to every client (slow clients are dropped)."""
        data = bytes(Message.inform(name, *args))
        for conn in list(self._connections):
            conn.write_async_bytes(data)
