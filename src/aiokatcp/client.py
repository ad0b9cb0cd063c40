"""The KATCP client: connection life cycle, requests, informs and sensor helpers.

This module owns :class:`Client`, :class:`ClientMeta` and :class:`ConnectAttempt`.
It is the asyncio half of the client; the rules live in pure modules:

* :mod:`._client_state`: the life-cycle states and the transition table
  (``Client._set_state`` is the only place that changes state, through it);
* :mod:`._client_requests`: message ids and reply/inform matching;
* :mod:`._backoff`: the retry delays (reconnect and watcher sync);
* :mod:`._sensor_wire`: the sensor wire format;
* :mod:`._client_watcher`: sensor watchers, which talk to the client only
  through the ``WatcherHost`` interface declared there.

The life-cycle task (``Client._run``) connects, negotiates, stays
connected, backs off and repeats; the connection callbacks only record what
happened and make the transitions that must be immediate.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import logging
import time
import warnings
from ssl import SSLContext
from types import TracebackType
from typing import (
    Any,
    Awaitable,
    Callable,
    Coroutine,
    Dict,
    FrozenSet,
    Generator,
    List,
    Optional,
    Sequence,
    Set,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
    overload,
)

from ._backoff import DEFAULT_BACKOFF, backoff_delays
from ._client_helpers import (
    call_isolated,
    connection_reset,
    enable_tcp_keepalive,
    expire,
    log_remote,
    parse_timeout_hints,
    reply_error,
)
from ._client_requests import NamedLocks, PendingRequest, ReplyAndInforms, RequestTracker
from ._client_state import HAVE_CONNECTION, Event, State, next_state
from ._client_watcher import AbstractSensorWatcher, SensorMonitor, SyncState
from ._codec import DEFAULT_LIMIT
from ._compat import timeout as timeout_scope
from ._dialect import (
    ASSUMED_PROTOCOL,
    CONNECT_INFORMS,
    ClientTimes,
    DetectResult,
    VersionDetector,
    VersionInfo,
    convert_seconds,
    uses_milliseconds,
)
from ._handlers import collect_handlers, wrap_handler
from ._message import Message, request_bytes
from ._protocol_flags import ProtocolFlags
from ._sensor_wire import SENSOR_TYPES, decode_sensor_value, value_type
from ._typeinfo import encode, get_decoder
from ._values import Timestamp
from .connection import Connection, ConnectionLoggerAdapter
from .exceptions import FailReply, InvalidReply, ProtocolError
from .sensor import Reading, Sensor, SensorSet

__all__ = [
    "AbstractSensorWatcher",
    "Client",
    "ClientMeta",
    "ConnectAttempt",
    "DiscreteMixin",
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
_UNREACHABLE = Sensor.Status.UNREACHABLE


class ClientMeta(type):
    """Metaclass collecting ``inform_*`` methods into ``_inform_handlers``.

    ``inform_foo_bar`` handles ``#foo-bar``; its annotated parameters are
    decoded from the message arguments just like server request handlers.
    """

    def __init__(
        cls, name: str, bases: Tuple[type, ...], namespace: Dict[str, Any], **kwds: Any
    ) -> None:
        # Class keywords go to __init_subclass__ (via type.__new__), not here.
        super().__init__(name, bases, namespace)
        cls._inform_handlers = collect_handlers(cls, "inform_", 1, require_docstring=False)


class ConnectAttempt(Coroutine[Any, Any, _C]):
    """What :meth:`Client.connect` returns: a coroutine, and an async context manager.

    ``client = await Client.connect(...)`` gives the connected client and
    ``asyncio.create_task(Client.connect(...))`` works (as in 2.x, where
    ``connect`` was a coroutine function); ``async with Client.connect(...) as
    client:`` also closes the client when the block ends.
    """

    def __init__(self, make: Callable[[], _C]) -> None:
        self._make = make
        self._client: Optional[_C] = None
        self._coro = self._connect()

    async def _connect(self) -> _C:
        client = self._make()
        try:
            await client._wait_connected(give_up_on_protocol_error=True)
        except BaseException:
            client.close()
            await client.wait_closed()
            raise
        self._client = client
        return client

    def __await__(self) -> Generator[Any, None, _C]:
        return self._coro.__await__()

    def send(self, value: Any) -> Any:
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        return self._coro.throw(*args)

    def close(self) -> None:
        self._coro.close()

    async def __aenter__(self) -> _C:
        return await self._coro

    async def __aexit__(self, *exc_info: Any) -> None:
        client = self._client
        if client is not None:
            client.close()
            await client.wait_closed()


class Client(metaclass=ClientMeta):
    """A KATCP client that keeps a connection to one device.

    The client connects in the background (and, by default, reconnects
    whenever the connection is lost), learns the server's protocol version
    and flags from ``#version-connect``, and matches replies to requests.
    It may be constructed before the event loop runs: connecting starts as
    soon as the loop does (or on the first ``await`` of one of its methods).

    Subclasses may define ``inform_<name>`` methods (typed arguments are
    decoded as for server request handlers), ``reply_<name>`` methods (for
    replies to messages sent with :meth:`send_message`) and override
    :meth:`unhandled_inform` and :meth:`unhandled_reply`.

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
        How long :meth:`connect` waits for ``#version-connect`` (or v4's
        ``#version``) after connecting. Requests may be sent meanwhile; a
        server that never announces itself is talked to as KATCP 5.0 without
        flags (no message ids). See :doc:`/v4`.
    protocol
        Preset the device's :class:`~aiokatcp.protocol.ProtocolFlags` (for
        example ``ProtocolFlags(4, 0, {"M"})`` for a KATCP v4 device): nothing
        is detected and nothing is waited for; contradicting connect informs
        are logged as warnings.
    ssl, server_hostname
        Connect (and reconnect) over TLS with this context (default: plain TCP),
        checking that the server's certificate names `server_hostname` (default:
        `host`). See :doc:`security`.
    backoff
        ``(initial, maximum)`` delay in seconds between retries, both of
        reconnecting and of a failed sensor-watcher sync (default
        ``(1.0, 60.0)``). The delay doubles after each failure up to
        `maximum` and is randomised down by up to half; a success resets it.

    Attributes
    ----------
    host, port, auto_reconnect, keepalive, negotiation_timeout, backoff, ssl, server_hostname
        As passed.
    protocol_flags : FrozenSet[str]
        Flags from ``#version-connect katcp-protocol`` (``"I"``: message
        ids, ``"B"``: bulk sensor sampling, ``"T"``: timeout hints, ...).
    protocol_version : Optional[Tuple[int, int]]
        ``(major, minor)`` of the server's protocol, ``(4, 0)`` for a server
        detected as v4, or ``None`` if unknown.
    protocol : ProtocolFlags
        The dialect in use (``5.0`` without flags while unknown); a v4 device's
        times are converted to seconds on every path.
    last_exc : Optional[Exception]
        Why the client is not connected (``None`` while connected).
    logger : logging.LoggerAdapter
        Logger (``aiokatcp.client``) that tags messages with the server address.
    """

    _inform_handlers: Dict[str, Callable[..., Any]]

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
        backoff: Tuple[float, float] = DEFAULT_BACKOFF,
        ssl: Optional[SSLContext] = None,
        server_hostname: Optional[str] = None,
        protocol: Optional[ProtocolFlags] = None,
    ) -> None:
        if server_hostname is not None and ssl is None:
            raise ValueError("server_hostname is only meaningful with ssl")
        if keepalive is not None and keepalive <= 0:
            raise ValueError("keepalive must be positive")
        next(backoff_delays(*backoff))  # validate the bounds now
        self.host = host
        self.port = port
        self.auto_reconnect = auto_reconnect
        self.keepalive = keepalive
        self.negotiation_timeout = negotiation_timeout
        self.backoff = (float(backoff[0]), float(backoff[1]))
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.protocol_flags: FrozenSet[str] = frozenset()
        self.protocol_version: Optional[Tuple[int, int]] = None
        self.protocol = ASSUMED_PROTOCOL
        self._preset = protocol
        self._detector = VersionDetector(protocol)
        self._times: Optional[ClientTimes] = None  # set for a device that uses milliseconds
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
        self._mid_support = False
        # One tracker for the client's life: message ids keep counting across reconnections.
        self._tracker = RequestTracker()
        self._request_locks = NamedLocks()
        self._timeout_hints: Dict[str, float] = {}
        self._delays = backoff_delays(*self.backoff)
        self._rx_count = 0
        self._state_waiters: List[asyncio.Future[None]] = []
        self._connected_callbacks: List[Callable[[], None]] = []
        self._disconnected_callbacks: List[Callable[[], None]] = []
        self._failed_connect_callbacks: List[Callable[[Exception], None]] = []
        # name -> [(callback as given, callable taking the message)]
        self._inform_callbacks: Dict[str, List[Tuple[Any, Callable[[Message], Any]]]] = {}
        self._tasks: Set[asyncio.Task[Any]] = set()
        self._monitor: Optional[SensorMonitor] = None
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
    def connect(
        cls: Type[_C],
        host: str,
        port: int,
        *,
        auto_reconnect: bool = True,
        limit: int = DEFAULT_LIMIT,
        loop: Optional[asyncio.AbstractEventLoop] = None,
        **kwargs: Any,
    ) -> ConnectAttempt[_C]:
        """Create a client and wait until it is connected.

        Await the result (``client = await Client.connect(...)``) or use it
        as an async context manager (``async with Client.connect(...) as
        client:``), which also closes the client when the block ends.

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
        return ConnectAttempt(
            functools.partial(
                cls, host, port, auto_reconnect=auto_reconnect, limit=limit, loop=loop, **kwargs
            )
        )

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
            if self._state is not State.DISCONNECTING:
                self._set_state(Event.DROP)
            conn.close()
        elif self._state is not State.CLOSED:
            self._set_state(Event.FINISH)
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

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()
        await self.wait_closed()

    def __del__(self) -> None:
        if getattr(self, "_task", None) is not None and self._state is not State.CLOSED:
            warnings.warn(f"unclosed Client {self!r}", ResourceWarning, stacklevel=1)

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

    # -- requests ----------------------------------------------------------------------------

    async def request_raw(
        self,
        name: str,
        *args: Any,
        timeout: Optional[float] = None,
        inform_callback: Optional[Callable[[Message], None]] = None,
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
        inform_callback
            Called with each inform of this request as it arrives (before the
            reply); the informs are still returned.

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
        if not self._can_send():
            raise BrokenPipeError("Not connected")
        if timeout is None:
            timeout = self._timeout_hints.get(name)
        if self._mid_support:
            return await self._send_request(name, args, timeout, inform_callback)
        async with self._request_locks.hold(name):  # no ids: FIFO per name
            if not self._can_send():
                raise BrokenPipeError("Not connected")
            return await self._send_request(name, args, timeout, inform_callback)

    def _can_send(self) -> bool:
        """Connected, or negotiating (a device may never announce itself; as katcp-python)."""
        return self._state is _CONNECTED or (self._state is _NEGOTIATING and not self._closing)

    async def request(
        self,
        name: str,
        *args: Any,
        timeout: Optional[float] = None,
        inform_callback: Optional[Callable[[Message], None]] = None,
    ) -> Tuple[List[bytes], List[Message]]:
        """Send a request and return the reply arguments after ``ok``, and the informs.

        Raises
        ------
        FailReply
            if the reply is ``fail`` (its message is the reply's second argument)
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
            req, handle = self._start_request(name, args, timeout, inform_callback)
            try:
                reply, informs = await req.future
            except BaseException:
                tracker.abandon(req)
                raise
            finally:
                if handle is not None:
                    handle.cancel()
        else:
            reply, informs = await self.request_raw(
                name, *args, timeout=timeout, inform_callback=inform_callback
            )
        reply_args = reply.arguments
        if reply_args and reply_args[0] == b"ok":
            return reply_args[1:], informs
        raise reply_error(reply_args)

    def send_message(self, msg: Message) -> None:
        """Send a prebuilt message without waiting for anything.

        A reply that no :meth:`request` waits for goes to the method
        ``reply_<name>`` (``-`` replaced by ``_``) if the class defines one,
        else to :meth:`unhandled_reply`. Informs carrying a message id that no
        request waits for go to :meth:`unhandled_inform`.

        Raises
        ------
        BrokenPipeError
            if there is no connection
        """
        conn = self._conn
        if conn is None or self._state is State.DISCONNECTING:
            raise BrokenPipeError("Not connected")
        conn.write_message(msg)

    async def _send_request(
        self,
        name: str,
        args: Tuple[Any, ...],
        timeout: Optional[float],
        inform_callback: Optional[Callable[[Message], None]] = None,
    ) -> ReplyAndInforms:
        """Send one request on the current connection (no state or lock checks)."""
        tracker = self._tracker
        req, handle = self._start_request(name, args, timeout, inform_callback)
        try:
            return await req.future
        except BaseException:
            tracker.abandon(req)
            raise
        finally:
            if handle is not None:
                handle.cancel()

    def _start_request(
        self,
        name: str,
        args: Tuple[Any, ...],
        timeout: Optional[float],
        inform_callback: Optional[Callable[[Message], None]],
    ) -> Tuple[PendingRequest, Optional[asyncio.TimerHandle]]:
        """Register and write one request; return it and its timeout timer.

        The caller awaits ``req.future`` and must abandon `req` if it stops
        waiting, and cancel the timer.
        """
        conn = self._conn
        if conn is None:
            raise BrokenPipeError("Not connected")
        tracker = self._tracker
        mid = tracker.allocate_mid() if self._mid_support else None
        times = self._times
        data = (
            request_bytes(name, mid, args)
            if times is None
            else times.request_bytes(name, mid, args)
        )
        loop = self.loop
        future: asyncio.Future[ReplyAndInforms] = loop.create_future()
        # Concurrent requests are sent together at the end of this loop iteration (one
        # system call); a lone request (serial use) goes at once.
        write = conn.write_soon if tracker.has_pending() else conn.write_bytes
        callback = None
        if inform_callback is not None:
            callback = functools.partial(self._call_request_inform, inform_callback)
        req = tracker.add(name, mid, future, callback)
        write(data)
        handle = None
        if timeout is not None:
            handle = loop.call_later(timeout, expire, future, name, timeout)
        return req, handle

    def _call_request_inform(self, callback: Callable[[Message], None], msg: Message) -> None:
        try:
            callback(msg)
        except Exception:
            self.logger.exception("Exception in inform callback for %s", msg)

    # -- sensor helpers ----------------------------------------------------------------------

    @overload
    async def sensor_reading(self, sensor_name: str) -> Reading[Any]: ...

    @overload
    async def sensor_reading(self, sensor_name: str, sensor_type: None) -> Reading[Any]: ...

    @overload
    async def sensor_reading(self, sensor_name: str, sensor_type: Type[_T]) -> Reading[_T]: ...

    async def sensor_reading(
        self, sensor_name: str, sensor_type: Optional[Type[Any]] = None
    ) -> Reading[Any]:
        """Query one sensor's current reading (``?sensor-value``).

        Parameters
        ----------
        sensor_name
            The exact sensor name.
        sensor_type
            Python type to decode the value as. If omitted, ``?sensor-list``
            gives the KATCP type (discrete and string values stay ``bytes``);
            it is sent together with ``?sensor-value``, first.

        Raises
        ------
        FailReply
            if the server does not know the sensor or returns other than one reading
        ValueError
            if the reply cannot be decoded
        """
        if sensor_type is None and self._times is not None:
            # v4: the listing must arrive first, as it says whether the value is a time.
            _, list_informs = await self.request("sensor-list", sensor_name)
            sensor_type = value_type(list_informs, sensor_name)
            _, value_informs = await self.request("sensor-value", sensor_name)
        elif sensor_type is None:
            results = await asyncio.gather(
                self.request("sensor-list", sensor_name),
                self.request("sensor-value", sensor_name),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            (_, list_informs), (_, value_informs) = results  # type: ignore[misc]
            sensor_type = value_type(list_informs, sensor_name)
        else:
            _, value_informs = await self.request("sensor-value", sensor_name)
        reading = decode_sensor_value(value_informs, sensor_type)
        times = self._times
        if times is not None and sensor_type is Timestamp:
            # Only sensors listed (#sensor-list) as timestamps had their value converted.
            if not times.is_timestamp_sensor(value_informs[0].arguments[2]):
                reading = Reading(
                    reading.timestamp, reading.status, Timestamp(reading.value / 1000)
                )
        return reading

    @overload
    async def sensor_value(self, sensor_name: str) -> Any: ...

    @overload
    async def sensor_value(self, sensor_name: str, sensor_type: None) -> Any: ...

    @overload
    async def sensor_value(self, sensor_name: str, sensor_type: Type[_T]) -> _T: ...

    async def sensor_value(self, sensor_name: str, sensor_type: Optional[Type[Any]] = None) -> Any:
        """Query one sensor's current value (see :meth:`sensor_reading`).

        Raises
        ------
        ValueError
            if the reading's status means it has no valid value
        """
        reading = await self.sensor_reading(sensor_name, sensor_type)
        if not reading.status.valid_value():
            raise ValueError(f"Reading for {sensor_name} has status {reading.status}")
        return reading.value

    def add_sensor_watcher(self, watcher: AbstractSensorWatcher) -> None:
        """Start mirroring the server's sensors into `watcher` (also when already connected).

        Any object with the watcher methods will do (they are looked up on the
        instance). Added to a connected client, the watcher is replayed the
        sensors the client already knows, with their last readings, at once.

        Raises
        ------
        RuntimeError
            if the client has been closed
        """
        if self._closing:
            raise RuntimeError("client is closed")
        if self._monitor is None:
            self._monitor = SensorMonitor(_MonitorHost(self))
        self._monitor.add_watcher(watcher)

    def remove_sensor_watcher(self, watcher: AbstractSensorWatcher) -> None:
        """Stop updating `watcher`; sensors nobody else wants are unsubscribed at once."""
        if self._monitor is not None:
            self._monitor.remove_watcher(watcher)

    # -- incoming messages -------------------------------------------------------------------

    def handle_message(self, conn: Connection, msg: Message) -> None:
        """Route one message from the server (called by the connection)."""
        if conn is not self._conn:
            return
        self._rx_count += 1
        mtype = msg.mtype
        if mtype is _INFORM and msg.name in CONNECT_INFORMS:
            self._detect(msg)
        if self._times is not None:
            msg = self._times.incoming(msg)
        if mtype is _INFORM:
            if self._tracker.handle_inform(msg):
                return
            if msg.mid is not None:
                self.unhandled_inform(msg)
                return
            self.handle_inform(msg)
        elif mtype is _REPLY:
            if not self._tracker.handle_reply(msg):
                handler = getattr(self, "reply_" + msg.name.replace("-", "_"), None)
                if handler is None:
                    self.unhandled_reply(msg)
                else:
                    self._call_inform(handler, msg)
        else:
            self.logger.info("Ignoring request sent by the server: %s", msg)

    def handle_inform(self, msg: Message) -> None:
        """Dispatch an asynchronous inform to ``inform_<name>`` (or :meth:`unhandled_inform`),
        then to the callbacks registered with :meth:`add_inform_callback`."""
        name = msg.name
        handler = self._inform_handlers.get(name)
        monitor = self._monitor
        if monitor is not None and monitor.handle_inform(msg):
            if handler is not None:
                self._call_inform(handler, self, msg)
        elif handler is None:
            self.unhandled_inform(msg)
        else:
            self._call_inform(handler, self, msg)
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
        """Called for an inform with no ``inform_*`` method (or an unknown message id).

        The default logs it at debug level, unless a callback is registered for it.
        """
        if msg.name not in self._inform_callbacks:
            self.logger.debug("Unhandled inform %s", msg)

    def unhandled_reply(self, msg: Message) -> None:
        """Called for a reply nobody waits for and no ``reply_<name>`` method handles.

        Such replies answer :meth:`send_message` calls, or requests whose
        caller gave up. The default logs it at debug level.
        """
        self.logger.debug("Dropping unexpected or late reply: %s", msg)

    def inform_version_connect(
        self, api: str, version: str, build_state: Optional[str] = None
    ) -> None:
        """Hook for ``#version-connect`` (the protocol was already learnt; see :attr:`versions`)."""

    @property
    def versions(self) -> Dict[str, VersionInfo]:
        """Every version row the device announced on this connection, by role.

        ``katcp-protocol``, ``katcp-library``, ``katcp-device`` and extra roles of
        ``#version-connect``; ``version`` and ``build-state`` for a v4 device.
        Each is ``(version, build_state)`` (``build_state`` may be ``None``).
        """
        return dict(self._detector.versions)

    def convert_seconds(self, seconds: float) -> float:
        """A time in seconds in the device's units (milliseconds for KATCP v4).

        The client's own helpers convert already; this is for arguments of your requests.
        """
        return convert_seconds(self.protocol, seconds)

    def _detect(self, msg: Message) -> None:
        """Feed a connect inform to the version detector (the order of informs never matters)."""
        try:
            result = self._detector.feed(msg)
        except ProtocolError as exc:
            self.last_exc = exc
            negotiated = self._negotiated
            if negotiated is not None and not negotiated.done():
                negotiated.set_exception(exc)
            elif self._state is _CONNECTED:
                self.logger.error("%s", exc)
                self._drop_connection(exc)
            # else: still negotiating; _negotiate raises the detector's error
            return
        if result is DetectResult.DETECTED:
            self._set_protocol(self._detector.protocol)
        elif result is DetectResult.CONTRADICTS_DETECTED:
            self.logger.warning("Ignoring a second, different #version-connect: %s", msg)
        elif result is DetectResult.CONTRADICTS_PRESET:
            self.logger.warning(
                "Ignoring %s: contradicts the preset protocol %s", msg, self._preset
            )
        elif result is DetectResult.MALFORMED:
            self.logger.warning("Ignoring malformed %s", msg)

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
        loop = self.loop
        self._negotiated = loop.create_future()
        self._lost = loop.create_future()
        self._timeout_hints = {}
        self._detector = VersionDetector(self._preset)
        self._set_protocol(self._preset)
        self._set_state(Event.TCP_UP)

    def _eof_received(self, conn: Connection) -> bool:
        self.logger.debug("Server closed its end of the connection")
        return False

    def _connection_lost(self, conn: Connection, exc: Optional[Exception]) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        if self._state is not State.DISCONNECTING:
            lost: Exception = ConnectionResetError("Connection closed by the server")
            lost.__cause__ = exc
            self.last_exc = lost
            self.logger.info("Connection lost: %s", exc or "closed by the server")
        negotiated = self._negotiated
        if negotiated is not None and not negotiated.done():
            negotiated.set_exception(self.last_exc or ConnectionResetError("Connection lost"))
            negotiated.exception()  # the run task may be gone (closing); avoid a warning
        if self._closing or not self.auto_reconnect:
            self._set_state(Event.FINISH)
        else:
            self._set_state(Event.LOST)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    # -- the life-cycle task -----------------------------------------------------------------

    def _ensure_started(self) -> None:
        """Start the life-cycle task if it has not been started (needs a running loop)."""
        if self._task is not None or self._closing:
            return
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError("Client used from a different event loop than it was given")
        self._loop = loop
        self._task = loop.create_task(self._run())
        # If cancelled before its first step, _run's clean-up never runs; this still does.
        self._task.add_done_callback(self._run_done)

    def _run_done(self, task: asyncio.Task[None]) -> None:
        if self._state is not State.CLOSED:
            self._set_state(Event.FINISH)

    async def _run(self) -> None:
        """Connect, negotiate, stay connected, back off, repeat (until closed or given up)."""
        try:
            while True:
                await self._run_connection()
                if self._state is not State.SLEEPING:
                    break
                delay = next(self._delays)
                self.logger.debug("Reconnecting in %.3f s", delay)
                await asyncio.sleep(delay)
                self._set_state(Event.RETRY)
        finally:
            conn = self._conn
            if conn is not None:  # cancelled (closed) with a connection still open
                if self._state is not State.DISCONNECTING:
                    self._set_state(Event.DROP)
                conn.close()
                await conn.wait_closed()
            if self._state is not State.CLOSED:
                self._set_state(Event.FINISH)
            if self._monitor is not None:
                self._monitor.close()
            for task in list(self._tasks):
                task.cancel()

    def _attempt_failed(self, exc: Exception) -> None:
        """Report one failed connection attempt (TCP or negotiation)."""
        # str(exc): a log handler keeping the record must not keep the traceback (and client).
        self.logger.warning("Failed to connect to %s:%s: %s", self.host, self.port, str(exc))
        self.last_exc = exc
        for callback in list(self._failed_connect_callbacks):
            call_isolated(self.logger, "failed-connect callback", callback, exc)

    async def _run_connection(self) -> None:
        """One connection attempt and, if it succeeds, the connection's whole life."""
        loop = self.loop
        try:
            _, conn = await loop.create_connection(
                lambda: Connection(self, False, self._limit),
                self.host,
                self.port,
                ssl=self.ssl,
                server_hostname=self.server_hostname if self.ssl is not None else None,
            )
        except OSError as exc:
            self._attempt_failed(exc)
            self._set_state(Event.CONNECT_FAILED if self.auto_reconnect else Event.FINISH)
            return
        if self.keepalive is not None:
            enable_tcp_keepalive(conn, self.keepalive, self.logger)
        lost = self._lost
        negotiated = self._negotiated
        assert lost is not None and negotiated is not None
        try:
            await self._negotiate(negotiated)
        except (ProtocolError, ConnectionError) as exc:
            self._attempt_failed(exc)
            if isinstance(exc, ProtocolError):
                self._drop_connection(exc)
            await lost
            return
        if self._conn is not conn:  # pragma: no cover - lost without an exception
            await lost
            return
        self._set_state(Event.NEGOTIATED)
        keepalive = None
        if self.keepalive is not None:
            keepalive = loop.create_task(self._keepalive(conn, self.keepalive))
        try:
            await lost
        finally:
            if keepalive is not None:
                keepalive.cancel()
                await asyncio.wait({keepalive})

    async def _negotiate(self, negotiated: asyncio.Future[None]) -> None:
        """Wait for the protocol version (or assume one), then fetch timeout hints."""
        try:
            async with timeout_scope(self.negotiation_timeout):
                await negotiated  # raises ProtocolError or ConnectionError
        except asyncio.TimeoutError:
            self.logger.warning(
                "No #version-connect within %g s: assuming a server without protocol flags "
                "(no message ids)",
                self.negotiation_timeout,
            )
            # (the timeout cancelled `negotiated`: a late #version-connect is then
            # handled as an update)
            return
        if "T" in self.protocol_flags:
            await self._fetch_timeout_hints()
        if self._detector.error is not None:  # contradicting informs came meanwhile
            raise self._detector.error

    async def _fetch_timeout_hints(self) -> None:
        try:
            reply, informs = await self._send_request(
                "request-timeout-hint", (), self.negotiation_timeout
            )
        except asyncio.TimeoutError:
            self.logger.warning("No reply to ?request-timeout-hint; not using timeout hints")
            return
        if not reply.reply_ok():
            self.logger.warning("?request-timeout-hint failed: %s", reply)
            return
        self._timeout_hints = parse_timeout_hints(informs, self.logger)

    async def _keepalive(self, conn: Connection, interval: float) -> None:
        """Drop the connection if the server stays silent and ignores ``?watchdog``.

        While requests are outstanding the check is skipped: the server may run a
        connection's requests in order, so a ``?watchdog`` would wait behind a long
        request and look like a dead peer. TCP keepalive covers that case.
        """
        seen = self._rx_count
        while self._conn is conn:
            await asyncio.sleep(interval)
            if self._rx_count != seen or len(self._tracker):
                seen = self._rx_count
                continue
            try:
                await self._send_request("watchdog", (), interval)
            except asyncio.TimeoutError:
                self.logger.warning(
                    "No reply to ?watchdog within %g s: dropping the connection", interval
                )
                self._drop_connection(
                    ConnectionResetError(f"Server did not answer ?watchdog within {interval} s"),
                    abort=True,
                )
                return
            except ConnectionError:
                return
            seen = self._rx_count

    # -- state -------------------------------------------------------------------------------

    def _set_state(self, event: Event) -> None:
        """The one place the state changes (as the table in :mod:`._client_state` allows)."""
        old = self._state
        state = self._state = next_state(old, event)
        if state is State.CONNECTED:
            self.last_exc = None
            self._delays = backoff_delays(*self.backoff)
        elif state is not State.NEGOTIATING:
            self._tracker.fail_all(connection_reset)
        waiters, self._state_waiters = self._state_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if state is State.CONNECTED:
            for callback in list(self._connected_callbacks):
                call_isolated(self.logger, "connected callback", callback)
        elif old is State.CONNECTED:
            for callback in list(self._disconnected_callbacks):
                call_isolated(self.logger, "disconnected callback", callback)

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

    def _set_protocol(self, protocol: Optional[ProtocolFlags]) -> None:
        """Use `protocol` (``None``: not known yet) on the current connection."""
        self.protocol = ASSUMED_PROTOCOL if protocol is None else protocol
        self.protocol_version = None if protocol is None else protocol.version
        self.protocol_flags = self.protocol.flags
        self._mid_support = self.protocol.message_ids
        self._times = ClientTimes(self.protocol) if uses_milliseconds(self.protocol) else None
        negotiated = self._negotiated
        if protocol is not None and negotiated is not None and not negotiated.done():
            negotiated.set_result(None)

    def _drop_connection(self, exc: Exception, abort: bool = False) -> None:
        """Close the current connection on our initiative (it will be re-made if wanted)."""
        conn = self._conn
        if conn is None or self._state is State.DISCONNECTING:
            return
        self.last_exc = exc
        self._set_state(Event.DROP)
        if abort:
            conn.abort()
        else:
            conn.close()


class DiscreteMixin:
    """Mixin of the enums :class:`SensorWatcher` makes for discrete sensors.

    Each member's value is its wire value (``bytes``), as in aiokatcp 2.x, and
    it encodes to exactly that.
    """

    value: bytes

    @property
    def katcp_value(self) -> bytes:
        """The member's KATCP wire value."""
        return self.value


@functools.lru_cache(maxsize=1024)
def _discrete_enum(values: Tuple[bytes, ...]) -> Type[enum.Enum]:
    """An enum whose members (``ENUM0``, ...) have `values` (shared per value list)."""
    members = [(f"ENUM{i}", value) for i, value in enumerate(values)]
    made = enum.Enum("discrete", members, module=__name__, type=DiscreteMixin)  # type: ignore[misc]
    return cast(Type[enum.Enum], made)


class SensorWatcher(AbstractSensorWatcher):
    """Mirrors the server's sensors into a local :class:`~aiokatcp.sensor.SensorSet`.

    Parameters
    ----------
    client
        The client to watch. The watcher does nothing until it is passed to
        :meth:`~aiokatcp.client.Client.add_sensor_watcher`.
    enum_types
        Enum types to use for discrete sensors whose values match theirs
        (same encoded values, same order); other discrete sensors get a
        generated enum whose members carry the wire values.

    Attributes
    ----------
    sensors : SensorSet
        The mirrored sensors, by local name (see :meth:`rewrite_name`).
        While disconnected every mirrored sensor has status ``unreachable``.
    synced : asyncio.Event
        Set exactly while the state is :attr:`SyncState.SYNCED`.
    """

    SENSOR_TYPES: Dict[str, type] = dict(SENSOR_TYPES)

    def __init__(self, client: Client, enum_types: Sequence[Type[enum.Enum]] = ()) -> None:
        self.client = client
        self.enum_types = list(enum_types)
        self.sensors = SensorSet()
        self.synced = asyncio.Event()
        #: The client's logger (records go to ``aiokatcp.client`` tagged with the address).
        self.logger = client.logger
        self.state = SyncState.DISCONNECTED
        # remote name -> (value decoder, local mirror sensors)
        self._mirrors: Dict[str, Tuple[Callable[[bytes], Any], Tuple[Sensor[Any], ...]]] = {}

    def rewrite_name(self, name: str) -> Union[str, Sequence[str]]:
        """Local name(s) for the remote sensor `name` (default: unchanged).

        Return several names to mirror one remote sensor more than once.
        """
        return name

    def make_type(self, type_name: str, parameters: Sequence[bytes]) -> type:
        """The Python type to mirror a sensor of KATCP type `type_name` with."""
        if type_name == "discrete":
            values = tuple(parameters)
            for enum_type in self.enum_types:
                if tuple(encode(member) for member in enum_type) == values:
                    return enum_type
            return _discrete_enum(values)
        return self.SENSOR_TYPES[type_name]

    def set_sensor_value(
        self, sensor: Sensor[Any], value: Any, status: Sensor.Status, timestamp: float
    ) -> None:
        """Store a reading in a mirrored sensor; override to alter readings on the way."""
        sensor.set_value(value, status, timestamp)

    def sensor_added(
        self, name: str, description: str, units: str, type_name: str, *args: bytes
    ) -> None:
        if type_name not in self.SENSOR_TYPES:
            self.logger.warning(
                "Type %s of sensor %s is not supported: not mirrored", type_name, name
            )
            self.sensor_removed(name)
            return
        if type_name == "discrete" and not args:
            self.logger.warning("Discrete sensor %s has no values: not mirrored", name)
            self.sensor_removed(name)
            return
        stype = self.make_type(type_name, args)
        local = self.rewrite_name(name)
        old = self._mirrors.get(name)
        if old is None and isinstance(local, str):  # the common case, kept cheap
            single: Sensor[Any] = Sensor(stype, local, description, units)
            self.sensors.add(single)
            self._mirrors[name] = (get_decoder(stype), (single,))
            return
        local_names = [local] if isinstance(local, str) else list(local)
        if old is not None:
            for sensor in old[1]:
                if sensor.name not in local_names:
                    self.sensors.discard(sensor)
        sensors = []
        for local_name in local_names:
            mirror: Sensor[Any] = Sensor(stype, local_name, description, units)
            self.sensors.add(mirror)
            sensors.append(mirror)
        self._mirrors[name] = (get_decoder(stype), tuple(sensors))

    def sensor_removed(self, name: str) -> None:
        entry = self._mirrors.pop(name, None)
        if entry is not None:
            for sensor in entry[1]:
                self.sensors.discard(sensor)

    def sensor_updated(
        self, name: str, value: bytes, status: Sensor.Status, timestamp: float
    ) -> None:
        entry = self._mirrors.get(name)
        if entry is None:
            return
        decoder, sensors = entry
        try:
            decoded = decoder(value)
        except ValueError as exc:
            if status.valid_value():
                self.logger.warning("Bad value for sensor %s: %s", name, exc)
                return
            # No meaningful value comes with this status: keep the old one.
            for sensor in sensors:
                self.set_sensor_value(sensor, sensor.value, status, timestamp)
            return
        for sensor in sensors:
            self.set_sensor_value(sensor, decoded, status, timestamp)

    def state_updated(self, state: SyncState) -> None:
        self.state = state
        if state is SyncState.SYNCED:
            self.synced.set()
        else:
            self.synced.clear()
        if state in (SyncState.DISCONNECTED, SyncState.CLOSED):
            now = time.time()
            for sensor in self.sensors.values():
                if sensor.status is not _UNREACHABLE:
                    sensor.set_value(sensor.value, _UNREACHABLE, now)


class _MonitorHost:
    """The client as the sensor monitor sees it (implements ``WatcherHost``)."""

    __slots__ = ("_client",)

    def __init__(self, client: Client) -> None:
        self._client = client

    @property
    def is_connected(self) -> bool:
        return self._client.is_connected

    @property
    def protocol_flags(self) -> FrozenSet[str]:
        return self._client.protocol_flags

    @property
    def protocol_version(self) -> Optional[Tuple[int, int]]:
        return self._client.protocol_version

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        return self._client.logger

    @property
    def backoff(self) -> Tuple[float, float]:
        return self._client.backoff

    def request(self, name: str, *args: Any) -> Awaitable[Tuple[List[bytes], List[Message]]]:
        return self._client.request(name, *args)

    def create_task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return self._client._create_task(coro)

    def add_connected_callback(self, callback: Callable[[], None]) -> None:
        self._client.add_connected_callback(callback)

    def add_disconnected_callback(self, callback: Callable[[], None]) -> None:
        self._client.add_disconnected_callback(callback)


# The watcher classes live in ._client_watcher; their public (2.x) path is this module.
for _cls in (AbstractSensorWatcher, SensorWatcher, SyncState):
    _cls.__module__ = __name__
del _cls
