"""The KATCP client: connection life cycle, requests, informs and sensor helpers.

This module owns :class:`Client` and :class:`ClientMeta`. The pieces it
delegates to live in private modules: reply matching and message ids in
:mod:`._client_requests`, sensor watching in :mod:`._client_watcher`
(re-exported here).

The connection life cycle is an explicit state machine (see
``doc/dev/client-fsm.rst``)::

    CONNECTING -> NEGOTIATING -> CONNECTED -> DISCONNECTING -> SLEEPING -> CONNECTING ...
                                                           \\-> CLOSED

Rules that keep it simple:

* one task (``_run``) owns the life cycle; the connection callbacks only
  record what happened and make the transitions that must be immediate
  (leaving ``CONNECTED`` when the socket goes away);
* every transition goes through :meth:`Client._set_state`, which also fires
  the connected/disconnected callbacks and fails pending requests whenever
  no connection is usable;
* ``CLOSED`` is final.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import warnings
from typing import (
    Any,
    Callable,
    Coroutine,
    Dict,
    FrozenSet,
    List,
    Optional,
    Set,
    Tuple,
    Type,
    TypeVar,
)

from ._client_helpers import (
    call_isolated,
    connection_reset,
    decode_sensor_value,
    expire,
    log_remote,
    parse_protocol_version,
    reply_error,
    sensor_value_type,
)
from ._client_lifecycle import HAVE_CONNECTION, State, run
from ._client_requests import PendingRequest, ReplyAndInforms, RequestTracker
from ._client_watcher import AbstractSensorWatcher, SensorWatcher, SyncState, _SensorMonitor
from ._codec import DEFAULT_LIMIT
from ._handlers import collect_handlers, wrap_handler
from ._message import Message, request_bytes
from .connection import Connection, ConnectionLoggerAdapter
from .exceptions import FailReply, InvalidReply, ProtocolError
from .sensor import Reading

__all__ = [
    "AbstractSensorWatcher",
    "Client",
    "ClientMeta",
    "ProtocolError",
    "SensorWatcher",
    "SyncState",
]

logger = logging.getLogger(__name__)

_C = TypeVar("_C", bound="Client")
_T = TypeVar("_T")
# Enum members looked up once (each ``Enum.MEMBER`` lookup costs a metaclass call).
_CONNECTED, _NEGOTIATING = State.CONNECTED, State.NEGOTIATING
_INFORM, _REPLY = Message.Type.INFORM, Message.Type.REPLY


class ClientMeta(type):
    """Metaclass collecting ``inform_*`` methods into ``_inform_handlers``.

    ``inform_foo_bar`` handles ``#foo-bar``; its annotated parameters are
    decoded from the message arguments just like server request handlers.
    """

    def __init__(cls, name: str, bases: Tuple[type, ...], namespace: Dict[str, Any]) -> None:
        super().__init__(name, bases, namespace)
        cls._inform_handlers = collect_handlers(cls, "inform_", 1, require_docstring=False)


class Client(metaclass=ClientMeta):
    """A KATCP client that keeps a connection to one device.

    The client connects in the background (and, by default, reconnects
    whenever the connection is lost), learns the server's protocol version
    and flags from ``#version-connect``, and matches replies to requests.
    It may be constructed before the event loop runs: connecting starts as
    soon as the loop does (or on the first ``await`` of one of its methods).

    Subclasses may define ``inform_<name>`` methods (typed arguments are
    decoded as for server request handlers) and override
    :meth:`unhandled_inform`; nothing else is a supported override.

    Parameters
    ----------
    host, port
        The server to connect to.
    auto_reconnect
        Whether to reconnect (with randomised exponential back-off) after a
        failed attempt or a lost connection. If false, the first failure
        closes the client.
    limit
        Maximum length of an incoming line, in bytes.
    loop
        Event loop to use (deprecated; defaults to the running loop).
    keepalive
        If set, check the connection every `keepalive` seconds: when nothing
        was received in that time a ``?watchdog`` is sent, and if it is not
        answered within another `keepalive` seconds the connection is
        dropped (and re-established if `auto_reconnect`).
    negotiation_timeout
        How long to wait for ``#version-connect`` after connecting. A server
        that never sends it (a v4 or minimal device) is then assumed to have
        no protocol flags: no message ids, so requests are serialised.

    Attributes
    ----------
    host, port, auto_reconnect, keepalive, negotiation_timeout
        As passed.
    protocol_flags : FrozenSet[str]
        Flags from ``#version-connect katcp-protocol`` (``"I"``: message
        ids, ``"B"``: bulk sensor sampling, ``"T"``: timeout hints, ...).
    protocol_version : Optional[Tuple[int, int]]
        ``(major, minor)`` of the server's protocol, ``(4, 0)`` for a server
        detected as v4, or ``None`` if unknown.
    last_exc : Optional[Exception]
        Why the client is not connected (``None`` while connected).
    logger : logging.LoggerAdapter
        Logger that tags messages with the server address.
    """

    _inform_handlers: Dict[str, Callable[..., Any]]
    #: Back-off bounds for reconnecting (seconds).
    _BACKOFF_INITIAL = 0.5
    _BACKOFF_MAX = 60.0

    def __init__(
        self,
        host: str,
        port: int,
        *,
        auto_reconnect: bool = True,
        limit: int = DEFAULT_LIMIT,
        loop: Optional[asyncio.AbstractEventLoop] = None,
        keepalive: Optional[float] = None,
        negotiation_timeout: float = 5.0,
    ) -> None:
        if keepalive is not None and keepalive <= 0:
            raise ValueError("keepalive must be positive")
        self.host = host
        self.port = port
        self.auto_reconnect = auto_reconnect
        self.keepalive = keepalive
        self.negotiation_timeout = negotiation_timeout
        self.protocol_flags: FrozenSet[str] = frozenset()
        self.protocol_version: Optional[Tuple[int, int]] = None
        self.last_exc: Optional[Exception] = None
        self.logger: logging.LoggerAdapter[logging.Logger] = ConnectionLoggerAdapter(
            logger, {"address": f"{host}:{port}"}
        )
        self._limit = limit
        self._loop = loop
        self._state = State.CONNECTING
        self._closing = False
        self._task: Optional[asyncio.Task[None]] = None
        self._conn: Optional[Connection] = None
        self._negotiated: Optional[asyncio.Future[None]] = None
        self._lost: Optional[asyncio.Future[None]] = None
        self._version_assumed = False
        self._mid_support = False
        self._tracker = RequestTracker()
        self._request_lock: Optional[asyncio.Lock] = None
        self._timeout_hints: Dict[str, float] = {}
        self._backoff = self._BACKOFF_INITIAL
        self._rx_count = 0
        self._state_waiters: List[asyncio.Future[None]] = []
        self._connected_callbacks: List[Callable[[], None]] = []
        self._disconnected_callbacks: List[Callable[[], None]] = []
        self._failed_connect_callbacks: List[Callable[[Exception], None]] = []
        # name -> [(callback as given, callable taking the message)]
        self._inform_callbacks: Dict[str, List[Tuple[Any, Callable[[Message], Any]]]] = {}
        self._raw_inform_callbacks: Dict[str, Tuple[Callable[[Message], None], ...]] = {}
        self._tasks: Set[asyncio.Task[Any]] = set()
        self._monitor: Optional[_SensorMonitor] = None
        try:
            running: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and (loop is None or loop is running):
            self._ensure_started()
        elif loop is not None:
            loop.call_soon(self._ensure_started)

    # -- construction and life cycle (public) -----------------------------------------------

    @classmethod
    async def connect(
        cls: Type[_C],
        host: str,
        port: int,
        *,
        auto_reconnect: bool = True,
        limit: int = DEFAULT_LIMIT,
        loop: Optional[asyncio.AbstractEventLoop] = None,
        **kwargs: Any,
    ) -> _C:
        """Create a client and wait until it is connected.

        A server speaking an unsupported protocol version makes this raise
        :class:`ProtocolError` even with `auto_reconnect` (retrying would not
        help); other failures are retried if `auto_reconnect` is true.

        Raises
        ------
        ProtocolError
            if the server's protocol version is not supported
        OSError
            if `auto_reconnect` is false and the connection attempt fails
        """
        client = cls(host, port, auto_reconnect=auto_reconnect, limit=limit, loop=loop, **kwargs)
        try:
            await client._wait_connected(give_up_on_protocol_error=True)
        except BaseException:
            client.close()
            await client.wait_closed()
            raise
        return client

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the client runs on."""
        if self._loop is None:
            return asyncio.get_running_loop()
        return self._loop

    @property
    def is_connected(self) -> bool:
        """Whether the client is connected and negotiated (ready for requests)."""
        return self._state is State.CONNECTED

    async def wait_connected(self) -> None:
        """Wait until the client is connected.

        Raises
        ------
        Exception
            :attr:`last_exc` (or :exc:`ConnectionAbortedError`) if the client
            is or becomes closed, instead of waiting forever
        """
        await self._wait_connected(give_up_on_protocol_error=False)

    async def wait_disconnected(self) -> None:
        """Wait until there is no connection to the server (returns at once if there is none)."""
        self._ensure_started()
        await self._wait_for(lambda: self._state not in HAVE_CONNECTION)

    def close(self) -> None:
        """Stop reconnecting and start closing the connection (see :meth:`wait_closed`)."""
        if self._closing:
            return
        self._closing = True
        self.last_exc = ConnectionAbortedError("Software caused connection abort")
        if self._monitor is not None:
            self._monitor.close()
        conn = self._conn
        if conn is not None:
            self._set_state(State.DISCONNECTING)
            conn.close()
        else:
            self._set_state(State.CLOSED)
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait_closed(self) -> None:
        """Wait until the client is closed (after :meth:`close`, or after giving up)."""
        if self._task is not None:
            await asyncio.wait({self._task})
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def __aenter__(self: _C) -> _C:
        self._ensure_started()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()
        await self.wait_closed()

    def __del__(self) -> None:
        if getattr(self, "_task", None) is not None and self._state is not State.CLOSED:
            warnings.warn(f"unclosed client {self!r}", ResourceWarning, stacklevel=1)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.port} {self._state.name}>"

    # -- callbacks ---------------------------------------------------------------------------

    def add_connected_callback(self, callback: Callable[[], None]) -> None:
        """Call `callback()` each time the client becomes connected (in registration order)."""
        self._connected_callbacks.append(callback)

    def remove_connected_callback(self, callback: Callable[[], None]) -> None:
        """Undo :meth:`add_connected_callback` (:exc:`ValueError` if not registered)."""
        self._connected_callbacks.remove(callback)

    def add_disconnected_callback(self, callback: Callable[[], None]) -> None:
        """Call `callback()` each time a connected client loses its connection."""
        self._disconnected_callbacks.append(callback)

    def remove_disconnected_callback(self, callback: Callable[[], None]) -> None:
        """Undo :meth:`add_disconnected_callback` (:exc:`ValueError` if not registered)."""
        self._disconnected_callbacks.remove(callback)

    def add_failed_connect_callback(self, callback: Callable[[Exception], None]) -> None:
        """Call `callback(exc)` each time a connection attempt fails (connect or negotiation)."""
        self._failed_connect_callbacks.append(callback)

    def remove_failed_connect_callback(self, callback: Callable[[Exception], None]) -> None:
        """Undo :meth:`add_failed_connect_callback` (:exc:`ValueError` if not registered)."""
        self._failed_connect_callbacks.remove(callback)

    def add_inform_callback(self, name: str, callback: Callable[..., Any]) -> None:
        """Call `callback` with the (decoded) arguments of every asynchronous ``#name``.

        Arguments are decoded from the callback's annotations, as for
        ``inform_*`` methods. Callbacks run after the class's handler.
        """
        wrapped = wrap_handler(name, callback, 0)
        self._inform_callbacks.setdefault(name, []).append((callback, wrapped))

    def remove_inform_callback(self, name: str, callback: Callable[..., Any]) -> None:
        """Undo :meth:`add_inform_callback` (:exc:`ValueError` if not registered)."""
        callbacks = self._inform_callbacks.get(name, [])
        for i, (orig, _) in enumerate(callbacks):
            if orig == callback:
                del callbacks[i]
                if not callbacks:
                    del self._inform_callbacks[name]
                return
        raise ValueError(f"{callback!r} is not registered for #{name}")

    def _add_raw_inform_callback(self, name: str, callback: Callable[[Message], None]) -> None:
        """Register an internal callback that takes the message itself (no decoding).

        Used by the sensor monitor for ``#sensor-status``, the hot path.
        """
        self._raw_inform_callbacks[name] = (*self._raw_inform_callbacks.get(name, ()), callback)

    # -- requests ----------------------------------------------------------------------------

    async def request_raw(
        self, name: str, *args: Any, timeout: Optional[float] = None
    ) -> ReplyAndInforms:
        """Send a request and return its reply and informs, whatever the reply code.

        Parameters
        ----------
        name
            Request name.
        *args
            Arguments, encoded with the type registry.
        timeout
            Seconds to wait for the reply; if ``None``, the server's
            ``?request-timeout-hint`` for `name` (if any), else no limit.

        Raises
        ------
        BrokenPipeError
            if the client is not connected
        ConnectionResetError
            if the connection is lost before the reply arrives
        asyncio.TimeoutError
            if `timeout` expires (the request is not retried)
        ValueError, TypeError
            if `name` is not a valid request name or an argument cannot be encoded
        """
        self._ensure_started()
        if self._state is not State.CONNECTED:
            raise BrokenPipeError("Not connected")
        if timeout is None:
            timeout = self._timeout_hints.get(name)
        if self._mid_support:
            return await self._send_request(name, args, timeout)
        # Without message ids only one request is outstanding at a time (katcp-protocol §3.4).
        if self._request_lock is None:
            self._request_lock = asyncio.Lock()
        async with self._request_lock:
            if self._state is not State.CONNECTED:
                raise BrokenPipeError("Not connected")
            return await self._send_request(name, args, timeout)

    async def request(
        self, name: str, *args: Any, timeout: Optional[float] = None
    ) -> Tuple[List[bytes], List[Message]]:
        """Send a request and return the reply arguments after ``ok``, and the informs.

        Raises
        ------
        FailReply
            if the reply is ``fail``
        InvalidReply
            if the reply is ``invalid``, has another failure code, or is empty
        BrokenPipeError, ConnectionResetError, asyncio.TimeoutError
            see :meth:`request_raw`
        """
        if self._mid_support and self._state is _CONNECTED:
            # The common case, inlined (one coroutine per request instead of three):
            # what request_raw does with message ids, without its lock.
            if timeout is None:
                timeout = self._timeout_hints.get(name)
            tracker = self._tracker
            req, handle = self._start_request(name, args, timeout)
            try:
                reply, informs = await req.future
            except BaseException:
                tracker.abandon(req)
                raise
            finally:
                if handle is not None:
                    handle.cancel()
        else:
            reply, informs = await self.request_raw(name, *args, timeout=timeout)
        reply_args = reply.arguments
        if reply_args and reply_args[0] == b"ok":
            return reply_args[1:], informs
        raise reply_error(name, reply_args)

    async def _send_request(
        self, name: str, args: Tuple[Any, ...], timeout: Optional[float]
    ) -> ReplyAndInforms:
        """Send one request on the current connection (no state or lock checks)."""
        tracker = self._tracker
        req, handle = self._start_request(name, args, timeout)
        try:
            return await req.future
        except BaseException:
            tracker.abandon(req)
            raise
        finally:
            if handle is not None:
                handle.cancel()

    def _start_request(
        self, name: str, args: Tuple[Any, ...], timeout: Optional[float]
    ) -> Tuple[PendingRequest, Optional[asyncio.TimerHandle]]:
        """Register and write one request; return it and its timeout timer.

        The caller awaits ``req.future`` and must abandon `req` (with the
        tracker current at the call) if it stops waiting, and cancel the timer.
        """
        conn = self._conn
        if conn is None:
            raise BrokenPipeError("Not connected")
        tracker = self._tracker
        mid = tracker.allocate_mid() if self._mid_support else None
        data = request_bytes(name, mid, args)
        loop = self.loop
        future: asyncio.Future[ReplyAndInforms] = loop.create_future()
        # Concurrent requests are sent together at the end of this loop iteration (one
        # system call); a lone request (serial use) goes at once.
        write = conn._write_soon if tracker.has_pending() else conn.write_bytes
        req = tracker.add(name, mid, future)
        write(data)
        handle = None
        if timeout is not None:
            handle = loop.call_later(timeout, expire, future, name, timeout)
        return req, handle

    # -- sensor helpers ----------------------------------------------------------------------

    async def sensor_reading(
        self, sensor_name: str, sensor_type: Optional[type] = None
    ) -> Reading[Any]:
        """Query one sensor's current reading (``?sensor-value``).

        Parameters
        ----------
        sensor_name
            The exact sensor name.
        sensor_type
            Python type to decode the value as. If omitted, ``?sensor-list``
            gives the KATCP type (discrete and string values stay ``bytes``).

        Raises
        ------
        FailReply
            if the server does not know the sensor or returns other than one reading
        ValueError
            if the reply cannot be decoded
        """
        if sensor_type is None:
            results = await asyncio.gather(
                self.request("sensor-value", sensor_name),
                self.request("sensor-list", sensor_name),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            (_, value_informs), (_, list_informs) = results  # type: ignore[misc]
            sensor_type = sensor_value_type(list_informs, sensor_name)
        else:
            _, value_informs = await self.request("sensor-value", sensor_name)
        return decode_sensor_value(value_informs, sensor_type)

    async def sensor_value(self, sensor_name: str, sensor_type: Optional[type] = None) -> Any:
        """Query one sensor's current value (see :meth:`sensor_reading`).

        Raises
        ------
        ValueError
            if the reading's status means it has no valid value
        """
        reading = await self.sensor_reading(sensor_name, sensor_type)
        if not reading.status.valid_value():
            raise ValueError(f"Reading for {sensor_name} has status {reading.status.name}")
        return reading.value

    def add_sensor_watcher(self, watcher: AbstractSensorWatcher) -> None:
        """Start mirroring the server's sensors into `watcher` (also when already connected).

        Raises
        ------
        RuntimeError
            if the client has been closed
        """
        if self._closing:
            raise RuntimeError("client is closed")
        if self._monitor is None:
            self._monitor = _SensorMonitor(self)
        self._monitor.add_watcher(watcher)

    def remove_sensor_watcher(self, watcher: AbstractSensorWatcher) -> None:
        """Stop updating `watcher` (its sensors are unsubscribed at the next sync)."""
        if self._monitor is not None:
            self._monitor.remove_watcher(watcher)

    # -- incoming messages -------------------------------------------------------------------

    def handle_message(self, conn: Connection, msg: Message) -> None:
        """Route one message from the server (called by the connection)."""
        if conn is not self._conn:
            return
        self._rx_count += 1
        mtype = msg.mtype
        if mtype is _INFORM:
            if self._tracker.handle_inform(msg):
                return
            if msg.mid is not None:
                self.logger.debug("Dropping inform for unknown message id: %s", msg)
                return
            if self._state is _NEGOTIATING and msg.name in ("version", "build-state"):
                self._detected_v4()
            self.handle_inform(msg)
        elif mtype is _REPLY:
            if not self._tracker.handle_reply(msg):
                self.logger.debug("Dropping unexpected or late reply: %s", msg)
        else:
            self.logger.info("Ignoring request sent by the server: %s", msg)

    def handle_inform(self, msg: Message) -> None:
        """Dispatch an asynchronous inform to ``inform_<name>`` (or :meth:`unhandled_inform`),
        then to the callbacks registered with :meth:`add_inform_callback`."""
        name = msg.name
        handler = self._inform_handlers.get(name)
        if handler is None:
            self.unhandled_inform(msg)
        else:
            self._call_inform(handler, self, msg)
        raw_callbacks = self._raw_inform_callbacks.get(name)
        if raw_callbacks is not None:
            for raw_callback in raw_callbacks:
                try:
                    raw_callback(msg)
                except Exception:
                    self.logger.exception("Exception while handling %s", msg)
        callbacks = self._inform_callbacks.get(name)
        if callbacks:
            for _, callback in tuple(callbacks):
                self._call_inform(callback, msg)

    def _call_inform(self, func: Callable[..., Any], *args: Any) -> None:
        try:
            result = func(*args)
        except (FailReply, InvalidReply) as exc:
            self.logger.warning("Could not handle #%s: %s", args[-1].name, exc)
        except Exception:
            self.logger.exception("Exception while handling %s", args[-1])
        else:
            if inspect.isawaitable(result):
                self._create_task(self._await_inform(result, args[-1]))

    async def _await_inform(self, awaitable: Any, msg: Message) -> None:
        try:
            await awaitable
        except (FailReply, InvalidReply) as exc:
            self.logger.warning("Could not handle #%s: %s", msg.name, exc)
        except Exception:
            self.logger.exception("Exception while handling %s", msg)

    def _create_task(self, coro: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        """Start a task owned by the client: cancelled on close, awaited by :meth:`wait_closed`."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def unhandled_inform(self, msg: Message) -> None:
        """Called for an asynchronous inform with no ``inform_*`` method.

        The default logs it at debug level, unless a callback is registered for it.
        """
        if msg.name not in self._inform_callbacks and msg.name not in self._raw_inform_callbacks:
            self.logger.debug("Unhandled inform %s", msg)

    def inform_version_connect(
        self, api: str, version: str, build_state: Optional[str] = None
    ) -> None:
        """Learn the protocol version and flags from ``#version-connect katcp-protocol``."""
        if api != "katcp-protocol":
            return
        parsed = parse_protocol_version(version)
        if parsed is None or parsed[0] != 5:
            exc = ProtocolError(
                f"Server speaks KATCP protocol version {version!r}; "
                "this client only supports version 5",
                version,
            )
            self.logger.error("%s", exc)
            self.last_exc = exc
            negotiated = self._negotiated
            if negotiated is not None and not negotiated.done():
                negotiated.set_exception(exc)
            else:
                self._drop_connection(exc)
            return
        major_minor = parsed[:2]
        flags = parsed[2]
        if self._state is State.NEGOTIATING or self._version_assumed:
            self._set_protocol(major_minor, flags)
            self._version_assumed = False
        elif (major_minor, flags) != (self.protocol_version, self.protocol_flags):
            self.logger.warning("Ignoring a second, different #version-connect: %s", version)

    def inform_disconnect(self, reason: str) -> None:
        """The server is about to close the connection: close our side too."""
        self.logger.info("Server disconnected: %s", reason)
        self._drop_connection(ConnectionResetError(f"Server disconnected: {reason}"))

    def inform_log(self, level: bytes, timestamp: bytes, name: bytes, *message: bytes) -> None:
        """Re-log a server ``#log`` message on the ``aiokatcp.client.remote`` logger."""
        address = self.logger.extra["address"] if self.logger.extra else None
        log_remote(address, level, timestamp, name, message)

    # -- connection callbacks (from Connection) ----------------------------------------------

    def _connection_made(self, conn: Connection) -> None:
        if self._closing:  # closed while connecting: the life-cycle task is being cancelled
            conn.abort()
            return
        self._conn = conn
        self.logger = conn.logger
        loop = self.loop
        self._negotiated = loop.create_future()
        self._lost = loop.create_future()
        self._tracker = RequestTracker()
        self._timeout_hints = {}
        self._version_assumed = False
        self._set_protocol(None, frozenset())
        self._set_state(State.NEGOTIATING)

    def _eof_received(self, conn: Connection) -> bool:
        conn.logger.debug("Server closed its end of the connection")
        return False

    def _connection_lost(self, conn: Connection, exc: Optional[Exception]) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        if self._state is not State.DISCONNECTING:
            lost: Exception = ConnectionResetError("Connection closed by the server")
            lost.__cause__ = exc
            self.last_exc = lost
            conn.logger.info("Connection lost: %s", exc or "closed by the server")
        negotiated = self._negotiated
        if negotiated is not None and not negotiated.done():
            negotiated.set_exception(self.last_exc or ConnectionResetError("Connection lost"))
            negotiated.exception()  # the run task may be gone (closing); avoid a warning
        if self._closing or not self.auto_reconnect:
            self._set_state(State.CLOSED)
        else:
            self._set_state(State.SLEEPING)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    # -- internals ---------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        """Start the life-cycle task if it has not been started (needs a running loop)."""
        if self._task is not None or self._closing:
            return
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError("Client used from a different event loop than it was given")
        self._loop = loop
        self._task = loop.create_task(run(self))
        # If cancelled before its first step, _run's clean-up never runs; this still does.
        self._task.add_done_callback(lambda task: self._set_state(State.CLOSED))

    def _set_state(self, state: State) -> None:
        old = self._state
        if state is old or old is State.CLOSED:
            return
        self._state = state
        if state is State.CONNECTED:
            self.last_exc = None
            self._backoff = self._BACKOFF_INITIAL
        elif state is not State.NEGOTIATING:
            self._tracker.fail_all(connection_reset)
        waiters, self._state_waiters = self._state_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if state is State.CONNECTED:
            for callback in list(self._connected_callbacks):
                call_isolated("connected callback", callback)
        elif old is State.CONNECTED:
            for callback in list(self._disconnected_callbacks):
                call_isolated("disconnected callback", callback)

    async def _wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            waiter = self.loop.create_future()
            self._state_waiters.append(waiter)
            await waiter

    async def _wait_connected(self, give_up_on_protocol_error: bool) -> None:
        self._ensure_started()
        while True:
            state = self._state
            if state is State.CONNECTED:
                return
            if state is State.CLOSED:
                raise self.last_exc or ConnectionAbortedError("Client is closed")
            if (
                give_up_on_protocol_error
                and state not in (State.NEGOTIATING, State.CONNECTING)
                and isinstance(self.last_exc, ProtocolError)
            ):
                raise self.last_exc
            await self._wait_for(functools.partial(self._state_is_not, state))

    def _state_is_not(self, state: State) -> bool:
        return self._state is not state

    def _set_protocol(self, version: Optional[Tuple[int, int]], flags: FrozenSet[str]) -> None:
        self.protocol_version = version
        self.protocol_flags = flags
        self._mid_support = "I" in flags
        negotiated = self._negotiated
        if version is not None and negotiated is not None and not negotiated.done():
            negotiated.set_result(None)

    def _detected_v4(self) -> None:
        self.logger.info("Server sent v4 connect informs: assuming KATCP v4 (no message ids)")
        self._set_protocol((4, 0), frozenset())

    def _fire_failed_connect(self, exc: Exception) -> None:
        self.last_exc = exc
        for callback in list(self._failed_connect_callbacks):
            call_isolated("failed-connect callback", callback, exc)

    def _drop_connection(self, exc: Exception, abort: bool = False) -> None:
        """Close the current connection on our initiative (it will be re-made if wanted)."""
        conn = self._conn
        if conn is None or self._state is State.DISCONNECTING:
            return
        self.last_exc = exc
        self._set_state(State.DISCONNECTING)
        if abort:
            conn.abort()
        else:
            conn.close()
