"""Sensor requests and per-client sampling for :class:`~aiokatcp.server.DeviceServer`.

asyncio layer. :class:`SensorRequests` is a mixin of ``DeviceServer``: it
owns ``self.sensors``, the requests ``?sensor-list``, ``?sensor-value``,
``?sensor-sampling`` and ``?sensor-sampling-clear``, each client's samplers
(kept in ``conn.samplers``, keyed by sensor) and the ``#interface-changed``
broadcast. Rules:

* every sampler belongs to exactly one connection and is closed when that
  connection is lost, when the client replaces or clears it, or when its
  sensor leaves ``self.sensors``;
* a bulk ``?sensor-sampling`` is validated completely before anything
  changes (all or nothing), then applied in batches that yield to the loop
  and wait for the client to drain, so other clients are not starved and
  the initial burst does not count against the slow-client limit;
* a reading is formatted as ``#sensor-status`` once and the same bytes are
  written to every client that reports it; a client's reports are gathered
  into one write per loop iteration.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

from ._message import Message
from ._pattern import compile_sensor_pattern
from ._sampling import SensorSampler, StrategySpec, resolve_strategy
from ._typeinfo import encode
from .exceptions import FailReply
from .sensor import Reading, Sensor, SensorSet

if TYPE_CHECKING:
    from ._server_conn import ClientConnection, RequestContext

__all__ = [
    "SensorRequests",
    "client_sampling_lock",
    "get_sampler",
    "sensor_update",
    "set_sampler",
]

_INFORM = Message.Type.INFORM
_ONE = b"1"
_NONE = [b"none"]
_Observer = Callable[[Sensor[Any], Reading[Any]], None]
#: A validated strategy for one sensor: ``(spec, is_auto)``; no spec means ``none``.
_Resolved = Tuple[Optional[StrategySpec], bool]
_UNSET = object()


def _status_args(sensor: Sensor[Any], reading: Reading[Any]) -> List[bytes]:
    """Arguments of ``#sensor-status``/``#sensor-value``: ``<ts> 1 <name> <status> <value>``."""
    return [
        float.__repr__(reading.timestamp).encode("ascii"),
        _ONE,
        sensor.name.encode("utf-8"),
        encode(reading.status),
        encode(reading.value),
    ]


class _StatusCache:
    """The ``#sensor-status`` bytes of each sensor's latest reported reading.

    Keyed by sensor, validated by reading identity: every client that
    reports the same :class:`Reading` object reuses one formatted line.
    """

    __slots__ = ("_data", "_readings")

    def __init__(self) -> None:
        # Two dicts rather than one of (reading, data) tuples: no object per sensor for
        # the garbage collector to scan.
        self._readings: Dict[Sensor[Any], Reading[Any]] = {}
        self._data: Dict[Sensor[Any], bytes] = {}

    def get(self, sensor: Sensor[Any], reading: Reading[Any]) -> bytes:
        if self._readings.get(sensor) is reading:
            return self._data[sensor]
        data = bytes(Message._make(_INFORM, "sensor-status", _status_args(sensor, reading), None))
        self._readings[sensor] = reading
        self._data[sensor] = data
        return data

    def discard(self, sensor: Sensor[Any]) -> None:
        self._readings.pop(sensor, None)
        self._data.pop(sensor, None)


class _ClientSampling:
    """Sampling state of one client connection (stored as ``conn._sampling``).

    Attributes
    ----------
    observer
        The observer given to all of the client's samplers.
    requests
        How many of the client's ``?sensor-sampling`` requests are in
        progress; while non-zero the slow-client limit is not applied (the
        burst is the client's own doing, and the request drains it as it goes).
    lock
        Serialises the client's ``?sensor-sampling`` requests.
    """

    __slots__ = ("lock", "observer", "requests")

    def __init__(self, conn: ClientConnection, cache: _StatusCache) -> None:
        self.requests = 0
        self.lock = asyncio.Lock()
        self.observer = self._make_observer(conn, cache)

    def _make_observer(self, conn: ClientConnection, cache: _StatusCache) -> _Observer:
        # Reports are corked until the end of the current loop iteration, so a burst
        # of updates costs one write (one system call) per client.
        loop = asyncio.get_running_loop()
        corked = False

        def flush() -> None:
            nonlocal corked
            corked = False
            conn.uncork()

        def observer(sensor: Sensor[Any], reading: Reading[Any]) -> None:
            nonlocal corked
            data = cache.get(sensor, reading)
            if not corked:
                corked = True
                conn.cork()
                loop.call_soon(flush)
            if self.requests:
                conn.write_bytes(data)
            else:
                conn.write_async_bytes(data)

        return observer


def _client_sampling(conn: ClientConnection) -> _ClientSampling:
    state: Optional[_ClientSampling] = getattr(conn, "_sampling", None)
    if state is None:
        server: Any = conn.owner
        state = _ClientSampling(conn, server._status_cache)
        setattr(conn, "_sampling", state)  # noqa: B010 - not declared by ClientConnection
    return state


def client_sampling_lock(conn: ClientConnection) -> asyncio.Lock:
    """The lock serialising `conn`'s ``?sensor-sampling`` requests (``samplers_lock``)."""
    return _client_sampling(conn).lock


def get_sampler(conn: ClientConnection, sensor: Sensor[Any]) -> Optional[SensorSampler[Any]]:
    """The sampler `conn` has for `sensor`, if any (``ClientConnection.get_sampler``)."""
    samplers: Dict[Sensor[Any], SensorSampler[Any]] = conn.samplers
    return samplers.get(sensor)


def set_sampler(
    conn: ClientConnection, sensor: Sensor[Any], sampler: Optional[SensorSampler[Any]]
) -> None:
    """Install `sampler` for `sensor` on `conn`, closing the one it replaces.

    ``None`` removes the client's sampler (strategy ``none``).
    (``ClientConnection.set_sampler``.)
    """
    samplers: Dict[Sensor[Any], SensorSampler[Any]] = conn.samplers
    old = samplers.pop(sensor, None)
    if old is not None and old is not sampler:
        old.close()
    if sampler is not None:
        samplers[sensor] = sampler
        server: Any = conn.owner
        server._sampling_connections.add(conn)


def sensor_update(conn: ClientConnection, sensor: Sensor[Any], reading: Reading[Any]) -> None:
    """Send `reading` of `sensor` to `conn` as ``#sensor-status`` (the samplers' observer).

    (``ClientConnection.sensor_update``.)
    """
    _client_sampling(conn).observer(sensor, reading)


class SensorRequests:
    """Mixin adding sensors, the sensor requests and per-client sampling to a device server.

    Attributes
    ----------
    sensors : SensorSet
        The device's sensors. Adding or removing one while clients are
        connected sends them ``#interface-changed sensor-list`` (once per
        burst of changes); removing one also ends every client's sampling of
        it.
    """

    #: Sensors handled between two yields to the event loop in a bulk ``?sensor-sampling``.
    SENSOR_SAMPLING_BATCH = 100

    sensors: SensorSet

    # -- hooks called by DeviceServer ------------------------------------------------------

    def _init_sensors(self) -> None:
        """Called once from ``DeviceServer.__init__``."""
        self.sensors = SensorSet()
        self._status_cache = _StatusCache()
        self._sampling_connections: Set[ClientConnection] = set()
        self._interface_changed_pending = False
        self.sensors.add_add_callback(self._sensor_added)
        self.sensors.add_remove_callback(self._sensor_removed)

    def _sensors_client_closed(self, conn: ClientConnection) -> None:
        """Called when a client connection is lost: release its samplers."""
        self._sampling_connections.discard(conn)
        samplers: Dict[Sensor[Any], SensorSampler[Any]] = conn.samplers
        while samplers:
            _, sampler = samplers.popitem()
            sampler.close()

    # -- sensor set changes ----------------------------------------------------------------

    def _sensor_added(self, sensor: Sensor[Any]) -> None:
        self._schedule_interface_changed()

    def _sensor_removed(self, sensor: Sensor[Any]) -> None:
        for conn in list(self._sampling_connections):
            sampler = conn.samplers.pop(sensor, None)
            if sampler is not None:
                sampler.close()
        self._status_cache.discard(sensor)
        self._schedule_interface_changed()

    def _schedule_interface_changed(self) -> None:
        """Send ``#interface-changed sensor-list`` soon, once per burst of changes."""
        if self._interface_changed_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not serving yet (e.g. sensors added in a constructor): nobody to tell
        self._interface_changed_pending = True
        loop.call_soon(self._send_interface_changed)

    def _send_interface_changed(self) -> None:
        self._interface_changed_pending = False
        server: Any = self
        server.mass_inform("interface-changed", "sensor-list")

    # -- helpers ---------------------------------------------------------------------------

    def _select_sensors(self, name: Optional[str]) -> List[Sensor[Any]]:
        """Sensors named by a ``?sensor-list``/``?sensor-value`` argument, sorted by name.

        Raises
        ------
        FailReply
            for an unknown exact name or an invalid ``/regex/``
        """
        if name is None:
            return [self.sensors[key] for key in sorted(self.sensors.keys())]
        if len(name) >= 2 and name.startswith("/") and name.endswith("/"):
            try:
                match = compile_sensor_pattern(name[1:-1])
                return [self.sensors[key] for key in sorted(self.sensors.keys()) if match(key)]
            except ValueError as exc:
                raise FailReply(f"invalid regular expression {name!r}: {exc}") from None
        sensor = self.sensors.get(name)
        if sensor is None:
            raise FailReply(f"Unknown sensor {name!r}")
        return [sensor]

    def _resolve_sampling(
        self, names: List[str], strategy: SensorSampler.Strategy, args: Tuple[bytes, ...]
    ) -> Tuple[List[Sensor[Any]], List[_Resolved]]:
        """Look up every sensor and validate the strategy for each (no side effects).

        Returns the sensors and, for each, its ``(spec or None, is_auto)``.
        This runs without yielding (validation must see one consistent state)
        and is kept lean for bulk requests: no objects are made per sensor,
        so it neither takes long nor provokes a garbage collection.

        Raises
        ------
        FailReply
            naming the first unknown or duplicated sensor, or the sensor the
            strategy does not suit
        """
        get_sensor = self.sensors.get
        sensors: List[Any] = [get_sensor(sensor_name) for sensor_name in names]
        check_names = None in sensors or len(set(names)) != len(names)
        seen: Set[str] = set()
        resolved_list: List[_Resolved] = []
        append = resolved_list.append
        cache: Dict[Any, _Resolved] = {}
        bulk = len(names) > 1
        last_stype: Any = _UNSET
        last_auto: Any = _UNSET
        last_params: Any = _UNSET
        resolved: Any = None
        for i, sensor in enumerate(sensors):
            if check_names:  # slow path: report the first bad name, in request order
                sensor_name = names[i]
                if sensor_name in seen:
                    raise FailReply(f"Duplicate sensor name {sensor_name!r}")
                seen.add(sensor_name)
                if sensor is None:
                    raise FailReply(f"Unknown sensor {sensor_name!r}")
            # The result only depends on the type (and, for auto, the sensor's own
            # strategy); consecutive sensors usually share all three.
            stype = sensor.stype
            auto = sensor.auto_strategy
            params = sensor.auto_strategy_parameters
            if stype is not last_stype or auto is not last_auto or params is not last_params:
                last_stype, last_auto, last_params = stype, auto, params
                key: Any = (stype, auto, params)
                try:
                    resolved = cache.get(key)
                except TypeError:  # unhashable auto_strategy_parameters
                    key, resolved = None, None
                if resolved is None:
                    try:
                        resolved = resolve_strategy(sensor, strategy, args)
                    except (ValueError, TypeError) as exc:
                        if bulk:
                            raise FailReply(f"sensor {names[i]!r}: {exc}") from None
                        raise FailReply(str(exc)) from None
                    if key is not None:
                        cache[key] = resolved
            append(resolved)
        return sensors, resolved_list

    # -- requests --------------------------------------------------------------------------

    async def request_sensor_list(self, ctx: RequestContext, name: Optional[str] = None) -> None:
        """List sensors: name, description, units, type and type parameters.

        Parameters
        ----------
        name
            A sensor name, or ``/regex/`` to list every sensor whose name
            matches (``re.search``); all sensors if omitted.
        """
        ctx.informs(
            (sensor.name, sensor.description, sensor.units, sensor.type_name, *sensor.params)
            for sensor in self._select_sensors(name)
        )

    async def request_sensor_value(self, ctx: RequestContext, name: Optional[str] = None) -> None:
        """Report current sensor readings (timestamp, status and value).

        Parameters
        ----------
        name
            A sensor name, or ``/regex/`` to report every sensor whose name
            matches (``re.search``); all sensors if omitted.
        """
        ctx.informs(_status_args(sensor, sensor.reading) for sensor in self._select_sensors(name))

    async def request_sensor_sampling(
        self,
        ctx: RequestContext,
        name: str,
        strategy: Optional[SensorSampler.Strategy] = None,
        *args: bytes,
    ) -> Tuple[Any, ...]:
        """Query or set the sampling strategy of one or more sensors.

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
            The strategy's parameters (times in seconds).
        """
        conn = ctx.conn
        names = name.split(",")
        if strategy is None:
            if len(names) > 1:
                raise FailReply("Cannot query multiple sensors")
            sensor = self.sensors.get(name)
            if sensor is None:
                raise FailReply(f"Unknown sensor {name!r}")
            sampler = get_sampler(conn, sensor)
            return (name, *(sampler.wire_parameters() if sampler is not None else _NONE))
        plan = self._resolve_sampling(names, strategy, args)
        first_spec, first_auto = plan[1][0]
        if strategy is SensorSampler.Strategy.NONE:
            reply_params = _NONE
        elif first_auto or first_spec is None:
            reply_params = [encode(strategy)]
        else:
            reply_params = first_spec.wire_params()
        state = _client_sampling(conn)
        async with state.lock:
            await self._apply_sampling(conn, state, plan)
        return (name.encode("utf-8"), *reply_params)

    async def _apply_sampling(
        self,
        conn: ClientConnection,
        state: _ClientSampling,
        plan: Tuple[List[Sensor[Any]], List[_Resolved]],
    ) -> None:
        """Install the validated samplers, yielding to the loop between batches."""
        observer = state.observer
        loop = asyncio.get_running_loop()
        batch = max(1, self.SENSOR_SAMPLING_BATCH)
        sensors = self.sensors
        state.requests += 1
        try:
            for i, (sensor, (spec, is_auto)) in enumerate(zip(*plan)):
                if i % batch == 0:
                    if i:
                        await asyncio.sleep(0)
                        await conn.drain()
                    if conn.is_closing():
                        # The client went away: its samplers are (or will be) released
                        # with the connection, and no new ones may be added.
                        return
                if sensors.get(sensor.name) is not sensor:
                    continue  # removed while we yielded: nothing to sample any more
                sampler = None
                if spec is not None:
                    sampler = SensorSampler._from_spec(sensor, observer, loop, spec, is_auto)
                set_sampler(conn, sensor, sampler)
        finally:
            state.requests -= 1

    async def request_sensor_sampling_clear(self, ctx: RequestContext) -> None:
        """Set the sampling strategy of every sensor to none, for this client only."""
        self._sensors_client_closed(ctx.conn)
