"""Server-side per-connection state: :class:`ClientConnection` and :class:`RequestContext`.

asyncio layer (imported by :mod:`aiokatcp.server`, which re-exports both
classes). A :class:`ClientConnection` holds what the device server's
scheduler needs per client (the queue of requests not yet started, the
request in progress) and implements the slow-client rule for asynchronous
messages. A :class:`RequestContext` is what a request handler uses to
reply and send informs.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections import deque
from typing import (
    TYPE_CHECKING,
    Any,
    Coroutine,
    Deque,
    Dict,
    Generator,
    Iterable,
    List,
    Optional,
)

from . import _server_sensors
from ._message import Message
from ._typeinfo import encode
from .connection import Connection, ConnectionLoggerAdapter

if TYPE_CHECKING:
    from .server import DeviceServer

__all__ = ["ClientConnection", "RequestContext", "resume_coroutine"]

logger = logging.getLogger("aiokatcp.server")

_REPLY = Message.Type.REPLY
_INFORM = Message.Type.INFORM
_OK = b"ok"


@types.coroutine
def resume_coroutine(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Await `coro` whose first step (run by the caller) yielded `yielded`.

    Passes everything between the task and `coro` as ``await coro`` would,
    so the server can run a handler's first step itself (most handlers
    finish there) and only wait like this when the handler really waits.
    """
    value = yielded
    while True:
        try:
            sent = yield value
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                value = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                value = coro.send(sent)
            except StopIteration as stop:
                return stop.value


class ClientConnection(Connection):
    """The server's side of one client connection.

    Besides the :class:`~aiokatcp.connection.Connection` interface it offers
    the *asynchronous* writes (:meth:`write_async_bytes`,
    :meth:`write_async_message`) used for informs the client did not ask for
    (``#sensor-status``, ``#log``, ``#client-connected``...): if the client
    does not read them and its unsent data grows past the server's
    ``max_backlog``, it is sent ``#disconnect`` and dropped, so one stalled
    client cannot make the server's memory grow without bound.

    Arbitrary attributes may be set on it (e.g. per-client sampler state).

    Parameters
    ----------
    owner
        The device server.
    limit
        Maximum request line length in bytes.

    Attributes
    ----------
    samplers : dict
        Per-client sensor sampling state, free for the sensor requests to use.
    """

    owner: DeviceServer
    coalesce_writes = True

    def __init__(self, owner: DeviceServer, limit: int) -> None:
        super().__init__(owner, True, limit)
        self.samplers: Dict[Any, Any] = {}
        # Requests received but not yet started (only the head one may be started).
        self._queue: Deque[Message] = deque()
        # The request started and not yet replied to, if any.
        self._busy: Optional[RequestContext] = None
        # Token of the worker task in charge of this connection's requests, if any.
        self._worker: Optional[object] = None
        # Whether this connection is in the server's queue of connections waiting for a slot.
        self._waiting = False
        # Requests started in the current burst (see DeviceServer._pump).
        self._burst = 0
        self._continue_scheduled = False
        self._eof = False
        self._dropping = False
        self._abort_handle: Optional[asyncio.TimerHandle] = None

    def _dispatch(self, results: List[Any]) -> None:
        self._burst = 0  # a new chunk of input starts a new burst
        super()._dispatch(results)

    def _schedule_continue(self) -> None:
        """Let other work run, then go on with this connection's queued requests."""
        if not self._continue_scheduled:
            self._continue_scheduled = True
            asyncio.get_running_loop().call_soon(self.owner._continue_connection, self)

    def _flush_corked(self) -> None:
        """Write out corked data early (a big burst of output)."""
        if self._corked:
            self._flush()

    def write_async_bytes(self, data: bytes) -> None:
        """Write pre-encoded asynchronous messages, dropping the client if it is too slow."""
        if self._dropping or self.is_closing():
            return  # nobody to tell: an asynchronous message is not worth a warning
        self._write(data)
        backlog = self.get_write_buffer_size()
        if backlog > self.owner.max_backlog:
            if self._corked and not self._cork_depth:
                # Part of it is only gathered for this loop iteration's write: hand it to
                # the socket first, and judge the client on what it has not taken.
                self._flush()
                backlog = self.get_write_buffer_size()
            if backlog > self.owner.max_backlog:
                self._drop_slow_client(backlog)

    def write_async_message(self, msg: Message) -> None:
        """Write one asynchronous message (see :meth:`write_async_bytes`)."""
        self.write_async_bytes(bytes(msg))

    def _drop_slow_client(self, backlog: int) -> None:
        self._dropping = True
        self.logger.warning(
            "Disconnecting slow client: %d bytes unsent exceeds max_backlog (%d)",
            backlog,
            self.owner.max_backlog,
        )
        self.write_message(Message.inform("disconnect", "client too slow: write backlog exceeded"))
        self.close()
        # If it still does not read, do not wait for ever for the goodbye to be delivered.
        loop = asyncio.get_running_loop()
        self._abort_handle = loop.call_later(self.owner.disconnect_timeout, self.abort)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self._abort_handle is not None:
            self._abort_handle.cancel()
            self._abort_handle = None
        super().connection_lost(exc)

    def _writing_resumed(self) -> None:
        self.owner._connection_ready(self)

    # -- sensor sampling: the aiokatcp 2.x names (the logic is in _server_sensors) ----------

    @property
    def samplers_lock(self) -> asyncio.Lock:
        """Serialises this client's ``?sensor-sampling`` requests."""
        return _server_sensors.client_sampling_lock(self)

    def set_sampler(self, s: Any, sampler: Any) -> None:
        """Install `sampler` (or ``None``) for sensor `s`, closing the one it replaces."""
        _server_sensors.set_sampler(self, s, sampler)

    def get_sampler(self, s: Any) -> Any:
        """This client's sampler for sensor `s`, or ``None``."""
        return _server_sensors.get_sampler(self, s)

    def sensor_update(self, s: Any, reading: Any) -> None:
        """Send a reading of `s` as ``#sensor-status`` (the observer used by samplers)."""
        _server_sensors.sensor_update(self, s, reading)


class RequestContext:
    """What a request handler uses to answer its request.

    Every request gets exactly one reply: either the handler sends it with
    :meth:`reply` or :meth:`informs`, or the server sends one from the
    handler's return value (or exception) when the handler finishes.

    Parameters
    ----------
    conn
        The connection the request came from.
    req
        The request.

    Attributes
    ----------
    conn : ClientConnection
        As passed.
    req : Message
        As passed.
    """

    __slots__ = ("_done", "_inline", "_logger", "_replied", "conn", "req")

    def __init__(self, conn: ClientConnection, req: Message) -> None:
        self.conn = conn
        self.req = req
        self._replied = False
        self._inline = True  # the scheduler is on the stack (not inside an awaited handler)
        self._done = False
        self._logger: Optional[ConnectionLoggerAdapter] = None

    @property
    def replied(self) -> bool:
        """Whether the reply has been sent."""
        return self._replied

    @property
    def msg(self) -> Message:
        """The request (the name the aiokatcp 2.x tutorial uses for :attr:`req`)."""
        return self.req

    @property
    def logger(self) -> ConnectionLoggerAdapter:
        """Logger tagging messages with the client address (``extra`` has ``address``, ``req``)."""
        if self._logger is None:
            self._logger = ConnectionLoggerAdapter(
                logger, {"address": self.conn.address, "req": self.req}
            )
        return self._logger

    def _check_not_replied(self) -> None:
        if self._replied:
            raise RuntimeError(f"request {self.req.name!r} has already been replied to")

    def _send_reply(self, arguments: List[bytes], before: bytes = b"") -> None:
        """Send a reply built from encoded arguments (must not have replied yet).

        `before` is pre-encoded data (the request's informs) written with it.
        """
        req = self.req
        self._replied = True
        self.conn._write(before + bytes(Message._make(_REPLY, req.name, arguments, req.mid)))
        self.conn.owner._request_replied(self)

    def reply(self, *args: Any) -> None:
        """Send the reply (e.g. ``ctx.reply("ok", 3)``); name and message ID are copied.

        Raises
        ------
        RuntimeError
            if the request has already been replied to
        """
        self._check_not_replied()
        self._send_reply([encode(arg) for arg in args])

    def inform(self, *args: Any) -> None:
        """Send one inform belonging to this request (sent before the reply).

        Raises
        ------
        RuntimeError
            if the request has already been replied to
        """
        self._check_not_replied()
        req = self.req
        self.conn._write(
            bytes(Message._make(_INFORM, req.name, [encode(arg) for arg in args], req.mid))
        )

    def informs(self, informs: Iterable[Iterable[Any]], *, send_reply: bool = True) -> None:
        """Send several informs and (by default) the reply ``ok <count>``, in one write.

        Parameters
        ----------
        informs
            One iterable of arguments per inform.
        send_reply
            Whether to finish with the ``ok <count>`` reply.

        Raises
        ------
        RuntimeError
            if the request has already been replied to
        """
        self._check_not_replied()
        req = self.req
        name, mid = req.name, req.mid
        msgs = [
            bytes(Message._make(_INFORM, name, [encode(arg) for arg in args], mid))
            for args in informs
        ]
        data = b"".join(msgs)
        if send_reply:
            self._send_reply([_OK, encode(len(msgs))], data)
        elif data:
            self.conn._write(data)

    async def drain(self) -> None:
        """Wait until the client has taken enough of the output (back-pressure)."""
        await self.conn.drain()
