"""The KATCP device server: :class:`DeviceServer` and the standard requests.

asyncio layer. This module owns :class:`DeviceServerMeta` (which turns
``request_*`` methods into typed handlers via :mod:`aiokatcp._handlers`)
and :class:`DeviceServer`, which holds every standard request handler and
the one dispatch point (:meth:`DeviceServer._dispatch`) where each admitted
request meets its handler. Listening, connections, shutdown and service
tasks are in :mod:`aiokatcp._server_base`; running requests (each as its
own task, as in aiokatcp 2.x) in :mod:`aiokatcp._server_sched`; each
client's sensor sampling in :mod:`aiokatcp._server_sampling`.

Opt-in extras: a device that uses nothing beyond aiokatcp 2.3 looks like
2.3 on the wire (banner ``5.1-MIB``, the nine standard requests of 2.3).
``?request-timeout-hint`` and the ``T`` flag appear when a request declares
a timeout hint; ``?restart`` when the device overrides :meth:`DeviceServer.restart`;
``?sensor-sampling-clear`` when :attr:`DeviceServer.SENSOR_SAMPLING_CLEAR` is true.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import ssl as _ssl
from typing import Any, Callable, ClassVar, Dict, Iterable, List, Optional, Tuple

from ._codec import DEFAULT_LIMIT
from ._dialect import (
    bulk_sampling_error,
    request_available,
    sampling_params_to_wire,
    sends_version_connect,
    strategy_error,
    v4_connect_informs,
)
from ._handlers import collect_handlers, get_request_timeout_hint, request_timeout_hint
from ._message import Message
from ._protocol_flags import ProtocolFlags
from ._sampler import SensorSampler
from ._sampling import DEFAULT_MIN_INTERVAL
from ._sensor_wire import forget_plain_name, plain_name, sensor_list_args, status_args
from ._server_base import DEFAULT_MAX_INPUT_BUFFERED, ServerBase, ServerLogHandler
from ._server_base import logger as logger  # (2.x had a module-level logger here)
from ._server_conn import ClientConnection
from ._server_sampling import ClientSampling
from ._server_sched import RequestContext
from ._server_sensors import Resolved, resolve_sampling, select_sensors
from ._typeinfo import encode
from ._values import LogLevel
from ._version import __version__
from .exceptions import FailReply, InvalidReply
from .sensor import Sensor, SensorSet

__all__ = [
    "ClientConnection",
    "DeviceServer",
    "DeviceServerMeta",
    "RequestContext",
    "request_timeout_hint",
]

_OK = b"ok"
_NONE = [b"none"]
_INFORM = Message.Type.INFORM
_OPT_IN = "_aiokatcp_opt_in"


def _opt_in(
    condition: Callable[[type], bool],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a standard request that exists only when `condition(cls)` holds (opt-in rule)."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        setattr(func, _OPT_IN, condition)
        return func

    return decorator


def _has_timeout_hints(cls: Any) -> bool:
    protocol: ProtocolFlags = cls._protocol
    return protocol.request_timeout_hints


def _overrides_restart(cls: type) -> bool:
    return getattr(getattr(cls, "restart", None), _OPT_IN, None) is None


def _wants_sampling_clear(cls: type) -> bool:
    return bool(getattr(cls, "SENSOR_SAMPLING_CLEAR", False))


class DeviceServerMeta(type):
    """Metaclass collecting ``request_*`` methods into ``_request_handlers``.

    Every function named ``request_<x>`` anywhere in the MRO handles
    ``?<x>`` (``_`` becomes ``-``). Each must have a docstring (its
    ``?help`` text), or class creation fails with :class:`TypeError`.
    Arguments are decoded from the annotations (see
    :func:`aiokatcp.connection.wrap_handler`). Standard requests beyond
    aiokatcp 2.3 are kept only when the class opts in (see the module
    docstring).
    """

    def __init__(
        cls, name: str, bases: Tuple[type, ...], namespace: Dict[str, Any], **kwds: Any
    ) -> None:
        # Class keywords go to __init_subclass__ (via type.__new__), not here.
        super().__init__(name, bases, namespace)
        handlers = collect_handlers(cls, "request_", 2, require_docstring=True)
        hints = {
            name: hint
            for name, handler in handlers.items()
            if (hint := get_request_timeout_hint(handler))  # 0 means "no hint"
        }
        cls._request_timeout_hints = hints
        cls._protocol_flags = "MIBT" if hints else "MIB"
        info = getattr(cls, "PROTOCOL_INFO", None)
        if info is not None and not isinstance(info, ProtocolFlags):
            raise TypeError(f"{name}.PROTOCOL_INFO must be a ProtocolFlags, not {info!r}")
        flags = getattr(cls, "PROTOCOL_FLAGS", None)
        if info is None and isinstance(flags, str):
            # The earlier spelling: a 5.1 flag string. It now gates features too.
            info = ProtocolFlags(5, 1, flags)
        # Without either: 5.1 with flags MIB, and T when a request declares a hint.
        cls._protocol = ProtocolFlags(5, 1, cls._protocol_flags) if info is None else info
        for msg_name, handler in list(handlers.items()):
            orig = getattr(handler, "_aiokatcp_orig_handler", handler)
            condition = getattr(orig, _OPT_IN, None)
            if (condition is not None and not condition(cls)) or not request_available(
                cls._protocol, msg_name
            ):
                del handlers[msg_name]
        cls._request_handlers = handlers


class DeviceServer(ServerBase, metaclass=DeviceServerMeta):
    """A KATCP device server.

    Subclass it, set :attr:`VERSION` and :attr:`BUILD_STATE`, and add
    ``request_*`` methods. Each request runs as its own task, so requests
    of one connection overlap and each reply goes out when its handler
    finishes (see :doc:`/server`). Subclass hooks: :meth:`on_stop`,
    :meth:`restart`, :meth:`unhandled_request`, :attr:`extra_versions`.

    Parameters
    ----------
    host
        Address to listen on (empty string: all interfaces).
    port
        Port to listen on (0: pick a free port; see :attr:`port`).
    limit
        Maximum request line length in bytes.
    max_pending
        Maximum number of requests in progress over the whole server; later
        requests wait in one FIFO, and reading pauses on every connection
        until a slot is free.
    max_backlog
        Maximum unsent bytes per client when an asynchronous message is
        queued; a client over it is disconnected. Default ``2 * limit``.
    loop
        Deprecated, kept for compatibility; the running loop is used.
    sock
        An already-bound listening socket to serve on (`host` and `port`
        are then ignored).
    ssl
        Serve over TLS with this context (see :doc:`security`).
    max_connections
        Maximum number of client connections (default: no limit); a client
        beyond it is sent ``#disconnect`` with the reason and closed.
    max_input_buffered
        Server-wide bound on the bytes held in unfinished input lines, over
        all connections (default 64 MiB); past it the connection holding
        the most is dropped.
    idle_timeout
        Disconnect a client from which nothing arrived for this many
        seconds while none of its requests is in progress (default: never).
    min_sampling_interval
        Smallest ``period`` (and longest interval of ``event-rate`` and
        ``differential-rate``) a client may ask for, in seconds (default
        0.001). See :doc:`server` ("Limits and hostile input").

    Attributes
    ----------
    sensors : SensorSet
        The device's sensors. Removing one ends every client's sampling of it.
    extra_versions : dict
        Extra ``role -> (version, [build-state])`` entries reported in
        ``#version-connect`` and ``?version-list``.
    disconnect_timeout : float
        Seconds a closing connection may take to send its last data before
        it is aborted.
    max_connections, max_input_buffered, idle_timeout, min_sampling_interval
        As passed.
    disconnect_counts : Dict[str, int]
        Clients disconnected by each limit: ``"slow"`` (``max_backlog``),
        ``"input"`` (``max_input_buffered``), ``"connections"``
        (``max_connections``), ``"idle"`` (``idle_timeout``).
    """

    # None here (as in 2.x) so that ``DeviceServer.VERSION`` exists; subclasses must set a str.
    VERSION: str = None  # type: ignore[assignment]
    BUILD_STATE: str = None  # type: ignore[assignment]
    #: The protocol dialect (see :doc:`/v4`): ``None`` is KATCP 5.1 with flags
    #: ``MIB`` (and ``T`` when a request declares a timeout hint), as aiokatcp 2.3.
    #: ``ProtocolFlags(4, 0, ...)`` makes a KATCP v4 device; flags ``B``, ``T`` and
    #: ``I`` gate bulk ``?sensor-sampling``, ``?request-timeout-hint`` and message ids.
    PROTOCOL_INFO: ClassVar[Optional[ProtocolFlags]] = None
    #: Earlier spelling of a v5.1 ``PROTOCOL_INFO``: a flag string such as ``"MI"``
    #: (``PROTOCOL_INFO`` wins when both are set).
    PROTOCOL_FLAGS: ClassVar[Optional[str]] = None
    #: Set to true to offer ``?sensor-sampling-clear`` (not in aiokatcp 2.3).
    SENSOR_SAMPLING_CLEAR = False
    #: Set to true to send ``#interface-changed sensor-list`` by itself whenever
    #: ``sensors`` changes while serving (not in aiokatcp 2.3, whose devices announce
    #: changes with ``mass_inform``; doing both would make every client re-list twice).
    AUTO_INTERFACE_CHANGED = False
    #: Sensors handled between two yields to the event loop in a bulk ``?sensor-sampling``.
    SENSOR_SAMPLING_BATCH = 50
    LogHandler = ServerLogHandler

    _request_handlers: Dict[str, Callable[..., Any]]
    _request_timeout_hints: Dict[str, float]
    _protocol_flags: str

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
        min_sampling_interval: float = DEFAULT_MIN_INTERVAL,
    ) -> None:
        for attr in ("VERSION", "BUILD_STATE"):
            if not isinstance(getattr(self, attr, None), str):
                raise TypeError(f"{type(self).__name__} does not define {attr}")
        super().__init__(
            host,
            port,
            limit=limit,
            max_pending=max_pending,
            max_backlog=max_backlog,
            loop=loop,
            sock=sock,
            ssl=ssl,
            max_connections=max_connections,
            max_input_buffered=max_input_buffered,
            idle_timeout=idle_timeout,
        )
        self.min_sampling_interval = min_sampling_interval
        # Only a subclass that overrides authorize() pays for calling it.
        self._authorizing = type(self).authorize is not DeviceServer.authorize
        self.extra_versions: Dict[str, Tuple[str, ...]] = {}
        self.sensors = SensorSet()
        self._interface_changed_pending = False
        self._sensor_removals = 0  # sensors removed (or replaced) so far
        self.sensors.add_add_callback(self._sensor_added)
        self.sensors.add_remove_callback(self._sensor_removed)

    # -- the dispatch point -------------------------------------------------------------------

    def _dispatch(self, ctx: RequestContext) -> Any:
        """Call the handler of an admitted request (every request, standard ones included).

        This is the one place a request meets its handler: checks that apply
        to every request (authorisation, protocol dialect, limits) belong here.
        """
        msg = ctx.req
        handler = self._request_handlers.get(msg.name)
        if self._authorizing:
            return self._authorize_then_handle(ctx, handler)
        if handler is None:
            return self.unhandled_request(ctx, msg)
        return handler(self, ctx, msg)

    async def _authorize_then_handle(
        self, ctx: RequestContext, handler: Optional[Callable[..., Any]]
    ) -> Any:
        msg = ctx.req
        if not await self.authorize(ctx, msg.name):
            ctx.logger.warning("Request %s denied by authorize()", msg.name)
            raise FailReply(f"request {msg.name} is not authorized")
        result = self.unhandled_request(ctx, msg) if handler is None else handler(self, ctx, msg)
        if result is not None and hasattr(result, "__await__"):
            result = await result
        return result

    async def authorize(self, ctx: RequestContext, name: str) -> bool:
        """Hook: may this client make request `name`? Awaited before every request.

        Standard and unknown requests included. Decide from ``ctx.conn.address``
        and ``ctx.conn.peer_certificate``; ``False`` fails the request (``request
        <name> is not authorized``, logged at warning) without running its handler.
        The default allows all and, unless overridden, is not called. See :doc:`security`.
        """
        return True

    async def unhandled_request(self, ctx: RequestContext, req: Message) -> None:
        """Hook for requests without a handler; override for dynamic dispatch.

        Raises
        ------
        InvalidReply
            by default (``unknown request <name>``)
        """
        raise InvalidReply(f"unknown request {req.name}")

    # -- versions -----------------------------------------------------------------------------

    def _version_connect(self) -> List[List[bytes]]:
        minor = ".".join(__version__.split(".")[:2])
        rows: List[Tuple[str, ...]] = [
            ("katcp-protocol", str(self._protocol)),
            ("katcp-library", f"aiokatcp-{minor}", f"aiokatcp-{__version__}"),
            ("katcp-device", self.VERSION, self.BUILD_STATE),
        ]
        rows.extend((role, *values) for role, values in self.extra_versions.items())
        return [[value.encode() for value in row] for row in rows]

    def _connect_informs(self) -> Iterable[Message]:
        if sends_version_connect(self._protocol):
            return super()._connect_informs()
        return v4_connect_informs(self.VERSION, self.BUILD_STATE)

    def send_version_info(self, ctx: RequestContext, *, send_reply: bool = True) -> None:
        """Send one inform per version role (and, by default, the ``ok <count>`` reply)."""
        ctx.informs(self._version_connect(), send_reply=send_reply)

    # -- sensors ------------------------------------------------------------------------------

    def _sensor_added(self, sensor: Sensor[Any]) -> None:
        plain_name(sensor.name)  # (ready for its first #sensor-status)
        self._schedule_interface_changed()

    def _sensor_removed(self, sensor: Sensor[Any]) -> None:
        self._sensor_removals += 1
        forget_plain_name(sensor.name)
        for conn in self.connections:
            conn.sampling.set(sensor, None)
        self.status_cache.discard(sensor)
        self._schedule_interface_changed()

    def _schedule_interface_changed(self) -> None:
        """Send ``#interface-changed sensor-list`` soon, once per burst of changes."""
        if self._interface_changed_pending or not self.AUTO_INTERFACE_CHANGED:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not serving yet (e.g. sensors added in a constructor): nobody to tell
        self._interface_changed_pending = True
        loop.call_soon(self._send_interface_changed)

    def _send_interface_changed(self) -> None:
        self._interface_changed_pending = False
        self.mass_inform("interface-changed", "sensor-list")

    # -- standard requests --------------------------------------------------------------------

    async def request_halt(self, ctx: RequestContext) -> None:
        """Halt the device server.

        The reply is sent first.
        """
        ctx.reply(_OK)
        self.halt()

    async def request_help(self, ctx: RequestContext, name: Optional[str] = None) -> None:
        """Return help on the available requests.

        Describe one request, or list all of them with a summary each.

        Parameters
        ----------
        name
            Request to describe in full (default: list every request).
        """
        handlers = self._request_handlers
        if name is None:
            rows = [(key, _doc_summary(handlers[key])) for key in sorted(handlers)]
        elif name in handlers:
            rows = [(name, inspect.getdoc(handlers[name]) or "")]
        else:
            raise FailReply(f"request {name} is not known")
        ctx.informs(rows)

    async def request_watchdog(self, ctx: RequestContext) -> None:
        """Check that the server is still alive."""

    async def request_version_list(self, ctx: RequestContext) -> None:
        """Request the list of versions of roles and subcomponents.

        The protocol, the library, the device and any other components.
        """
        self.send_version_info(ctx)

    async def request_log_level(
        self, ctx: RequestContext, level: Optional[LogLevel] = None
    ) -> LogLevel:
        """Query or set the current logging level.

        The level applies to the log messages sent to clients.

        Parameters
        ----------
        level
            New level: off, fatal, error, warn, info, debug, trace or all
            (default: leave unchanged). It applies to every client.
        """
        if level is not None:
            self.log_level = level
        return self.log_level

    async def request_client_list(self, ctx: RequestContext) -> None:
        """Request the list of connected clients."""
        ctx.informs((conn.address,) for conn in self.connections)

    @_opt_in(_overrides_restart)
    async def restart(self) -> None:
        """Hook behind ``?restart``: override it to restart the device.

        ``?restart`` is offered only by devices that override this method.
        """
        raise FailReply("restart is not supported by this device")  # pragma: no cover

    @_opt_in(_overrides_restart)
    async def request_restart(self, ctx: RequestContext) -> None:
        """Restart the device."""
        await self.restart()

    @_opt_in(_has_timeout_hints)
    async def request_request_timeout_hint(
        self, ctx: RequestContext, name: Optional[str] = None
    ) -> None:
        """Suggest a timeout (seconds) for one request, or for every request that has one.

        Parameters
        ----------
        name
            Request to ask about (default: every request with a hint; 0 means no hint).
        """
        hints = self._request_timeout_hints
        if name is None:
            ctx.informs((key, hints[key]) for key in sorted(hints))
        elif name in self._request_handlers:
            ctx.informs([(name, hints.get(name, 0.0))])
        else:
            raise FailReply(f"request {name} is not known")

    async def request_sensor_list(self, ctx: RequestContext, name: Optional[str] = None) -> int:
        """Request the list of sensors.

        Each with name, description, units, type and type parameters.

        Parameters
        ----------
        name
            A sensor name, or ``/regex/`` to list every sensor whose name
            matches (``re.search``); all sensors if omitted.

        Returns
        -------
        int
            The number of ``#sensor-list`` informs sent (the reply is ``ok <count>``); as in
            2.x, so that an override can call it and use the count.
        """
        rows = [sensor_list_args(sensor) for sensor in select_sensors(self.sensors, name)]
        ctx.informs(rows, send_reply=False)
        return len(rows)

    async def request_sensor_value(self, ctx: RequestContext, name: Optional[str] = None) -> None:
        """Request the value of a sensor or sensors.

        The current readings: timestamp, status and value.

        Parameters
        ----------
        name
            A sensor name, or ``/regex/`` to report every sensor whose name
            matches (``re.search``); all sensors if omitted.
        """
        ctx.informs(
            status_args(sensor, sensor.reading, self._millis)
            for sensor in select_sensors(self.sensors, name)
        )

    async def request_sensor_sampling(
        self,
        ctx: RequestContext,
        name: str,
        strategy: Optional[SensorSampler.Strategy] = None,
        *args: bytes,
    ) -> Tuple[Any, ...]:
        """Configure or query the way a sensor is sampled.

        Query or set the sampling strategy of one or more sensors.

        ``?sensor-sampling name`` reports the current strategy. With a
        strategy (``none``, ``auto``, ``period P``, ``event``,
        ``differential D``, ``event-rate S L``, ``differential-rate D S L``)
        it is set for every sensor in the comma-separated list, atomically:
        if any sensor is unknown or unsuitable, nothing changes. Setting any
        strategy but ``none`` reports each sensor's current reading at once.

        Parameters
        ----------
        name
            Sensor name, or several separated by commas (set form only).
        strategy
            The strategy to set; omit to query.
        *args
            The strategy's parameters (times in seconds; milliseconds on a v4 device).
        """
        conn = ctx.conn
        names = name.split(",")
        protocol = self._protocol
        if strategy is None:
            # (A comma list is just an unknown name here, as in aiokatcp 2.x.)
            sensor = self.sensors.get(name)
            if sensor is None:
                raise FailReply(f"Unknown sensor {name!r}")
            sampler = conn.sampling.get(sensor)
            params = sampler.wire_parameters() if sampler is not None else _NONE
            return (name, *sampling_params_to_wire(protocol, params))
        error = bulk_sampling_error(protocol, name.encode("utf-8")) or strategy_error(
            protocol, encode(strategy).decode()
        )
        if error is not None:
            raise FailReply(error)
        looked_up = (self.sensors, self._sensor_removals)
        sensors, plan = resolve_sampling(
            looked_up[0], names, strategy, args, self.min_sampling_interval
        )
        first_spec, first_auto = plan[0]
        if strategy is SensorSampler.Strategy.NONE:
            reply_params = _NONE
        elif first_auto or first_spec is None:
            reply_params = [encode(strategy)]
        else:
            reply_params = first_spec.wire_params()
        sampling = conn.sampling
        async with sampling.lock:
            await self._apply_sampling(conn, sampling, sensors, plan, looked_up)
        return (name.encode("utf-8"), *sampling_params_to_wire(protocol, reply_params))

    async def _apply_sampling(
        self,
        conn: ClientConnection,
        sampling: ClientSampling,
        sensors: List[Sensor[Any]],
        plan: List[Resolved],
        looked_up: Tuple[SensorSet, int],
    ) -> None:
        """Install the validated samplers, yielding to the loop between batches.

        Each sensor's initial report is its reading at the start of the
        request; a sensor removed meanwhile still gets it but keeps no sampler.
        (`looked_up` is the sensor set `sensors` were found in and its count of
        removals then: while neither has changed, none of them can have left.)
        """
        sampler_loop = sampling.sampler_loop
        batch = max(1, self.SENSOR_SAMPLING_BATCH)
        current = self.sensors
        bulk = len(sensors) > batch
        readings = [sensor.reading for sensor in sensors] if bulk else None
        # (Hot loop of a bulk subscription: bound methods and batch bounds hoisted.)
        get_current = current.get
        observer = sampling.observer
        install = sampling.set
        make_sampler = SensorSampler._from_spec
        count = len(sensors)
        sampling.requests += 1
        try:
            for start in range(0, count, batch):
                if start:
                    await asyncio.sleep(0)
                    await conn.drain()
                    if conn.is_closing():
                        return  # the client went away: its samplers are released with it
                check = self.sensors is not looked_up[0] or self._sensor_removals != looked_up[1]
                sampling.begin_batch()
                try:
                    for i in range(start, min(start + batch, count)):
                        sensor = sensors[i]
                        spec, is_auto = plan[i]
                        if check and get_current(sensor.name) is not sensor:
                            if spec is not None and readings is not None:
                                observer(sensor, readings[i])
                            continue
                        if spec is None:
                            install(sensor, None)
                        else:
                            sampler = make_sampler(sensor, observer, sampler_loop, spec, is_auto)
                            install(sensor, sampler)
                finally:
                    sampling.end_batch(last=start + batch >= count)
        finally:
            sampling.requests -= 1

    @_opt_in(_wants_sampling_clear)
    async def request_sensor_sampling_clear(self, ctx: RequestContext) -> None:
        """Set the sampling strategy of every sensor to none, for this client only."""
        ctx.conn.sampling.close_all()


def _doc_summary(handler: Callable[..., Any]) -> str:
    doc = inspect.getdoc(handler) or ""
    return doc.split("\n", 1)[0]
