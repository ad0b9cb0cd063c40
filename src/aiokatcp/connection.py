"""One KATCP connection over an asyncio transport, for both clients and servers.

This module owns :class:`Connection`: bytes from the socket go through the
pure incremental parser (:class:`aiokatcp._codec.MessageParser`) and come out
as calls to an *owner* (a ``DeviceServer`` or a ``Client``); messages going
the other way are serialised and written, batched into a single
``transport.write`` where possible. It knows nothing about requests,
handlers or sensors.

It is built on the (buffered) transport/protocol API rather than streams
because it is the hot path: there is no reader task per connection, data is
received into one buffer shared by all connections (so an idle connection
costs only its protocol object, and no 256 KiB buffer is allocated per
read) and parsed at once, and writes made while handling one chunk of input
are coalesced ("corked") into one system call. Nothing depends on the
transport class, so it runs on uvloop too.

Also re-exported here for the aiokatcp 2.x import paths: :class:`FailReply`,
:class:`InvalidReply`, :data:`DEFAULT_LIMIT` and :func:`wrap_handler`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Iterable,
    List,
    MutableMapping,
    Optional,
    Protocol,
    Tuple,
)

from ._codec import DEFAULT_LIMIT, MessageParser, ParseResult
from ._handlers import wrap_handler
from ._message import Message
from ._values import Address
from .exceptions import FailReply, InvalidReply, KatcpSyntaxError

__all__ = [
    "DEFAULT_LIMIT",
    "Connection",
    "ConnectionLoggerAdapter",
    "ConnectionOwner",
    "FailReply",
    "InvalidReply",
    "wrap_handler",
]

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    _LoggerAdapter = logging.LoggerAdapter[logging.Logger]
else:
    _LoggerAdapter = logging.LoggerAdapter

#: Address reported before the connection is made (or when the peer address is not IP).
_UNKNOWN_ADDRESS = Address(ipaddress.IPv4Address("0.0.0.0"))


def _log_message(level: str, logger_name: str, text: str) -> Message:
    """``#log <level> <now> <logger_name> <text>``: how a device tells a client of an error."""
    return Message._make(
        Message.Type.INFORM,
        "log",
        [level.encode(), repr(time.time()).encode(), logger_name.encode(), text.encode()],
        None,
    )


class ConnectionLoggerAdapter(_LoggerAdapter):
    """Logger adapter that appends the peer address (``extra["address"]``) to messages.

    Per-connection log lines then say which peer they are about without
    every call site formatting it.
    """

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> Tuple[Any, MutableMapping[str, Any]]:
        extra = self.extra if self.extra is not None else {}
        return f"{msg} [{extra.get('address')}]", kwargs


def _make_address(peername: Any) -> Address:
    """Convert a transport's ``peername`` to an :class:`Address` (unknown if not IP)."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        try:
            return Address(ipaddress.ip_address(peername[0]), int(peername[1]))
        except (ValueError, TypeError):
            pass
    return _UNKNOWN_ADDRESS


class ConnectionOwner(Protocol):
    """What a :class:`Connection` tells its owner (a server or a client) about."""

    def handle_message(self, conn: Any, msg: Message) -> None: ...  # pragma: no cover

    def _connection_made(self, conn: Any) -> None: ...  # pragma: no cover

    def _connection_lost(self, conn: Any, exc: Optional[Exception]) -> None: ...  # pragma: no cover

    def _eof_received(self, conn: Any) -> Optional[bool]: ...  # pragma: no cover


#: Corked output above which it is written out early (so write back-pressure can act).
_CORK_FLUSH = 65536
#: Size of the receive buffer (shared, see :meth:`Connection.get_buffer`).
_BUFFER_SIZE = 256 * 1024
#: Size of a private receive buffer, used only while the shared one is lent out.
_PRIVATE_BUFFER_SIZE = 64 * 1024
#: Input is parsed and dispatched in pieces of at most this size, so that the results of
#: one read (one object per line: up to one per 2 bytes of garbage) stay few.
_FEED_CHUNK = 16 * 1024
#: Malformed lines reported (logged, and ``#log`` on the server) per connection per window.
_SYNTAX_REPORT_BURST = 10
#: Length in seconds of the window of :data:`_SYNTAX_REPORT_BURST`.
_SYNTAX_REPORT_WINDOW = 1.0


class _SharedBuffer(threading.local):
    """One receive buffer shared by all connections (of one thread's event loop).

    Selector loops and uvloop call ``get_buffer``, receive into it and call
    ``buffer_updated`` synchronously, so one buffer serves every connection
    and an idle connection holds none. A loop that keeps the buffer while a
    read is in flight (the Windows proactor) makes the next connection fall
    back to a private buffer instead. Each thread has its own buffer, so
    event loops in different threads never share one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.buffer = memoryview(bytearray(_BUFFER_SIZE))
        self.lent_to: Optional[Connection] = None


_shared = _SharedBuffer()


class Connection(asyncio.BufferedProtocol):
    """One KATCP connection (client or server side).

    The owner is told about events through these methods (all synchronous):

    ``owner.handle_message(conn, msg)``
        a complete, valid message arrived; exceptions it raises are logged
        and do not affect the connection;
    ``owner._connection_made(conn)``
        the transport is connected (``conn.address`` and ``conn.logger`` are set);
    ``owner._connection_lost(conn, exc)``
        the connection is closed (`exc` is ``None`` for a clean close);
    ``owner._eof_received(conn)``
        the peer closed its sending side; return ``True`` to keep the
        connection open for writing (the owner must then close it itself),
        or ``False``/``None`` to let the transport close.

    Malformed lines are logged; on the server side the peer is also sent
    ``#log error <time> aiokatcp.connection <problem>`` (it cannot be sent a
    reply: there is no reliable name to reply to). Over-long lines are
    discarded by the parser without being buffered whole.

    Parameters
    ----------
    owner
        The object told about events (see above).
    is_server
        Whether this is the server side of the connection.
    limit
        Maximum line length in bytes (including the newline).

    Attributes
    ----------
    owner, is_server
        As passed.
    address : Address
        Peer address (set on connect).
    logger : ConnectionLoggerAdapter
        Logger that tags messages with the peer address (set on connect).
    """

    #: Gather writes made outside :meth:`cork` and write them once per loop iteration
    #: (one system call for all the replies a burst of work produces).
    coalesce_writes = False

    def __init__(self, owner: ConnectionOwner, is_server: bool, limit: int = DEFAULT_LIMIT) -> None:
        self.owner = owner
        self.is_server = is_server
        self.limit = limit
        self.address = _UNKNOWN_ADDRESS
        self.logger = ConnectionLoggerAdapter(logger, {"address": self.address})
        self._parser = MessageParser(limit)
        self._transport: Optional[asyncio.BaseTransport] = None
        self._closed = False
        self._closed_future: Optional[asyncio.Future[None]] = None
        self._write_paused = False
        self._drain_future: Optional[asyncio.Future[None]] = None
        self._reading_paused = False
        self._cork_depth = 0
        self._corked: List[bytes] = []
        self._corked_size = 0
        self._warned_closed = False
        self._private: Optional[memoryview] = None  # receive buffer, if not the shared one
        self._flush_scheduled = False
        self._lost_exc: Optional[Exception] = None
        self._discarding = False
        # Rate limit of malformed-line reports: start of the window, reports in it, suppressed.
        self._syntax_window = -_SYNTAX_REPORT_WINDOW
        self._syntax_reported = 0
        self._syntax_suppressed = 0

    # -- asyncio protocol callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self.address = _make_address(transport.get_extra_info("peername"))
        self.logger = ConnectionLoggerAdapter(logger, {"address": self.address})
        self.owner._connection_made(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        shared = _shared
        if shared.lent_to is None or shared.lent_to is self:
            # (A connection has one read at a time: if it asks again, its last read is over.)
            shared.lent_to = self
            return shared.buffer
        self._private = memoryview(bytearray(_PRIVATE_BUFFER_SIZE))
        return self._private

    def buffer_updated(self, nbytes: int) -> None:
        shared = _shared
        if shared.lent_to is self:
            shared.lent_to = None
            data = bytes(shared.buffer[:nbytes])
        else:
            assert self._private is not None
            data = bytes(self._private[:nbytes])
            self._private = None
        self.data_received(data)

    def data_received(self, data: bytes) -> None:
        """Parse a chunk of input and hand the messages to the owner."""
        if self._discarding:
            return
        if len(data) <= _FEED_CHUNK:
            results = self._parser.feed(data)
            if results:
                self._dispatch(results)
            return
        self._cork_depth += 1  # (the replies to the whole read still leave together)
        try:
            for start in range(0, len(data), _FEED_CHUNK):
                if self._discarding:
                    break
                results = self._parser.feed(data[start : start + _FEED_CHUNK])
                if results:
                    self._dispatch(results)
        finally:
            self._uncork()

    def eof_received(self) -> bool:
        results = None if self._discarding else self._parser.feed_eof()
        if results:
            self._dispatch(results)
        keep_open = bool(self.owner._eof_received(self))
        # A TLS transport cannot stay half-open (asyncio would warn on each close).
        return keep_open and self.ssl_object is None

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if _shared.lent_to is self:
            _shared.lent_to = None
        self._private = None
        self._closed = True
        self._lost_exc = exc
        self._corked.clear()
        self._corked_size = 0
        self._wake_drain()
        if self._closed_future is not None and not self._closed_future.done():
            self._closed_future.set_result(None)
        self.owner._connection_lost(self, exc)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain()
        self._writing_resumed()

    def _writing_resumed(self) -> None:
        """Hook for subclasses: the transport's write buffer has drained."""

    # -- input --------------------------------------------------------------------------------

    def _dispatch(self, results: List[ParseResult]) -> None:
        """Hand parsed messages to the owner, with all resulting writes batched."""
        handle = self.owner.handle_message
        debug = logger.isEnabledFor(logging.DEBUG)
        self._cork_depth += 1
        try:
            for item in results:
                if self._discarding:
                    break  # (dropped by its owner: the rest of the input is ignored)
                if type(item) is Message:
                    if debug:
                        self.logger.debug("Received message %r", bytes(item))
                    try:
                        handle(self, item)
                    except Exception:
                        self.logger.exception("Exception in message handler")
                else:
                    assert isinstance(item, KatcpSyntaxError)
                    self._syntax_error(item)
        finally:
            self._uncork()

    def _syntax_error(self, exc: KatcpSyntaxError) -> None:
        """Report a malformed line: a warning, and ``#log error`` to a client of the server.

        At most ``_SYNTAX_REPORT_BURST`` (10) lines are reported per
        ``_SYNTAX_REPORT_WINDOW`` (1) seconds; the first report after a
        window in which some were suppressed says how many (a peer sending
        garbage must not cost a log record and a ``#log`` per line).
        """
        try:
            now = asyncio.get_running_loop().time()
        except RuntimeError:
            now = time.monotonic()
        if now - self._syntax_window >= _SYNTAX_REPORT_WINDOW:
            self._syntax_window = now
            self._syntax_reported = 0
        if self._syntax_reported >= _SYNTAX_REPORT_BURST:
            self._syntax_suppressed += 1
            return
        self._syntax_reported += 1
        detail = str(exc)
        suppressed = self._syntax_suppressed
        if suppressed:
            self._syntax_suppressed = 0
            detail += f" ({suppressed} earlier malformed lines not reported)"
        self.logger.warning("Malformed message received: %s", detail)
        if self.is_server:
            self.write_message(_log_message("error", __name__, f"malformed message: {detail}"))

    # -- output -------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            for line in data.splitlines(keepends=True):
                self.logger.debug("Sent message %r", line)
        if self._closed or self._transport is None or self._transport.is_closing():
            if not self._warned_closed:
                self._warned_closed = True
                self.logger.warning("Connection closed before message could be sent")
            return
        if self._cork_depth:
            self._corked.append(data)
            self._corked_size += len(data)
            if self._corked_size >= _CORK_FLUSH:
                self._flush()  # a big burst: let the transport apply back-pressure now
        elif self.coalesce_writes or self._corked:
            # (Data already gathered by _write_soon goes first: keep the order.)
            self._gather(data)
        else:
            self._transport.write(data)  # type: ignore[attr-defined]

    def _gather(self, data: bytes) -> None:
        """Hold `data` until the end of this loop iteration, with other such writes."""
        self._corked.append(data)
        self._corked_size += len(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_flush)

    def _write_soon(self, data: bytes) -> None:
        """Write `data` with the other writes of this loop iteration (one system call).

        For bursts (e.g. many concurrent client requests): the first write of
        a burst can go out at once, later ones are gathered.
        """
        if self._cork_depth or self.is_closing():
            self._write(data)  # (warns if closed; corked data is flushed by uncork)
        else:
            self._gather(data)

    def write_soon(self, data: bytes) -> None:
        """Public name of :meth:`_write_soon` (for the client's concurrent requests)."""
        self._write_soon(data)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        if self._corked and not self._cork_depth:
            self._flush()

    def _uncork(self) -> None:
        self._cork_depth -= 1
        if self._cork_depth == 0 and self._corked:
            self._flush()

    def _flush(self) -> None:
        corked = self._corked
        data = corked[0] if len(corked) == 1 else b"".join(corked)
        self._corked = []
        self._corked_size = 0
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)  # type: ignore[attr-defined]

    def cork(self) -> None:
        """Hold writes in memory until the matching :meth:`uncork` (calls nest).

        Used to gather the replies produced by one burst of work into a
        single system call.
        """
        self._cork_depth += 1

    def uncork(self) -> None:
        """Undo one :meth:`cork`; the outermost one writes everything held."""
        if self._cork_depth <= 0:
            raise RuntimeError("uncork() without cork()")
        self._uncork()

    def write_messages(self, msgs: Iterable[Message]) -> None:
        """Serialise `msgs` and write them with one ``transport.write``.

        If the connection is already closed, a warning is logged (once) and
        the messages are dropped.
        """
        self._write(b"".join([bytes(msg) for msg in msgs]))

    def write_message(self, msg: Message) -> None:
        """Serialise and write one message (see :meth:`write_messages`)."""
        self._write(bytes(msg))

    def write_bytes(self, data: bytes) -> None:
        """Write already-encoded wire data (one or more complete lines)."""
        if data:
            self._write(data)

    @property
    def buffered(self) -> int:
        """Bytes of unfinished input line held (see :attr:`MessageParser.buffered`)."""
        return self._parser.buffered

    def discard_input(self) -> None:
        """Drop the unfinished input and ignore any further input (the connection is going)."""
        self._parser = MessageParser(self.limit)
        self._discarding = True

    def get_write_buffer_size(self) -> int:
        """Bytes written but not yet sent (including writes held by :meth:`cork`)."""
        size = self._corked_size
        transport = self._transport
        if transport is not None and not self._closed:
            size += transport.get_write_buffer_size()  # type: ignore[attr-defined]
        return size

    async def drain(self) -> None:
        """Wait until the transport accepts more data.

        Returns at once if the connection is already closed.

        Raises
        ------
        OSError
            the connection's error (e.g. :exc:`ConnectionResetError`) if it
            is lost with one while waiting
        """
        if not self._write_paused or self._closed:
            return
        if self._drain_future is None:
            self._drain_future = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._drain_future)
        if self._closed and self._lost_exc is not None:
            raise self._lost_exc

    def _wake_drain(self) -> None:
        fut = self._drain_future
        if fut is not None:
            self._drain_future = None
            if not fut.done():
                fut.set_result(None)

    # -- flow control and lifetime -----------------------------------------------------------

    def pause_reading(self) -> None:
        """Stop reading from the socket (no effect if already paused or closing)."""
        if not self._reading_paused:
            self._reading_paused = True
            transport = self._transport
            if transport is not None and not transport.is_closing():
                transport.pause_reading()  # type: ignore[attr-defined]

    def resume_reading(self) -> None:
        """Undo :meth:`pause_reading`."""
        if self._reading_paused:
            self._reading_paused = False
            transport = self._transport
            if transport is not None and not transport.is_closing():
                transport.resume_reading()  # type: ignore[attr-defined]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Transport information such as ``"socket"`` or ``"peername"`` (`default` if none)."""
        if self._transport is None:
            return default
        return self._transport.get_extra_info(name, default)

    @property
    def write_paused(self) -> bool:
        """Whether the transport asked us to stop writing (the peer is not reading)."""
        return self._write_paused

    @property
    def closed(self) -> bool:
        """Whether the connection is fully closed (:meth:`connection_lost` ran)."""
        return self._closed

    @property
    def ssl_object(self) -> Any:
        """The connection's :class:`ssl.SSLObject`, or ``None`` for a plain TCP connection."""
        return self.get_extra_info("ssl_object")

    @property
    def peer_certificate(self) -> Optional[Dict[str, Any]]:
        """The peer's verified TLS certificate, as :meth:`ssl.SSLSocket.getpeercert` decodes it.

        ``None`` for a plain TCP connection, or when the peer sent no
        certificate (a server sees one only if its context requires or
        asks for client certificates). Use it to identify the client, e.g.
        in :meth:`~aiokatcp.server.DeviceServer.authorize`.
        """
        ssl_object = self.ssl_object
        if ssl_object is None:
            return None
        cert = ssl_object.getpeercert()
        return cert or None

    def is_closing(self) -> bool:
        """Whether the connection is closed or closing (nothing more can be sent)."""
        return self._closed or self._transport is None or self._transport.is_closing()

    def close(self) -> None:
        """Close gracefully: data already written is still sent."""
        if self._corked:
            self._flush()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close at once, discarding unsent data."""
        self._corked.clear()
        self._corked_size = 0
        if self._transport is not None:
            self._transport.abort()  # type: ignore[attr-defined]

    async def wait_closed(self) -> None:
        """Wait until the connection is fully closed (:meth:`connection_lost` ran)."""
        if self._closed:
            return
        if self._closed_future is None:
            self._closed_future = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._closed_future)


# Defined in ._handlers; its public (2.x) path is this module.
wrap_handler.__module__ = __name__
