"""Client-side sensor mirroring: sensor watchers and the monitor that feeds them.

This module owns :class:`SyncState`, :class:`AbstractSensorWatcher`,
:class:`SensorWatcher` (all re-exported from :mod:`aiokatcp.client`) and the
internal ``_SensorMonitor``, which a :class:`~aiokatcp.client.Client` creates
on its first :meth:`~aiokatcp.client.Client.add_sensor_watcher`.

Rules of the monitor:

* one *sync* at a time, run as a task owned by the client: list the
  sensors, tell each watcher what was added/removed/changed, subscribe the
  wanted sensors with ``auto`` (bulk when the server has flag ``B``) and
  unsubscribe the unwanted ones; a request for another sync while one runs
  (``#interface-changed``, a new watcher) makes it run again afterwards;
* every call into a watcher that belongs together happens between two
  ``await``\\ s, bracketed by ``batch_start``/``batch_stop``, so a
  disconnect (which cancels the sync) can never split a batch;
* a disconnect cancels the sync and moves every watcher to
  ``DISCONNECTED``; each sync carries a generation number so a cancelled
  sync that is still unwinding changes nothing;
* ``#sensor-status`` is the hot path: the dispatch table maps the raw name
  bytes straight to the interested watchers, and nothing is allocated
  beyond the decoded timestamp.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Set,
    Tuple,
    Type,
    Union,
)

from ._lru import Lru
from ._message import Message
from ._typeinfo import encode, get_decoder
from ._values import Address, Timestamp
from .exceptions import FailReply, InvalidReply
from .sensor import Sensor, SensorSet, _Status

if TYPE_CHECKING:
    from .client import Client

__all__ = ["AbstractSensorWatcher", "SensorWatcher", "SyncState"]

logger = logging.getLogger("aiokatcp.client")

_STATUS_FROM_WIRE: Dict[bytes, _Status] = {
    status.name.lower().encode(): status for status in Sensor.Status
}
#: Seconds before retrying a failed sync, doubling after each failure up to the maximum.
_RETRY_FIRST = 1.0
_RETRY_MAX = 60.0
#: What ``?sensor-list`` says about one sensor: description, units, type name, parameters.
_Info = Tuple[str, str, str, Tuple[bytes, ...]]


class SyncState(enum.Enum):
    """How up to date a sensor watcher is."""

    DISCONNECTED = 1  #: the client is not connected (mirrored values are stale)
    SYNCING = 2  #: connected; the sensor list and subscriptions are being (re)loaded
    SYNCED = 3  #: every wanted sensor is known and subscribed
    CLOSED = 4  #: the client was closed; no more updates will come


class AbstractSensorWatcher:
    """Receives the sensors of the server a client is connected to.

    Override the methods you need; each default does nothing. Calls that
    belong together are bracketed by :meth:`batch_start` and
    :meth:`batch_stop`. Do not override ``__eq__`` or ``__hash__``.
    """

    def filter(self, name: str, description: str, units: str, type_name: str, *args: bytes) -> bool:
        """Whether to mirror this sensor (default: all)."""
        return True

    def sensor_added(
        self, name: str, description: str, units: str, type_name: str, *args: bytes
    ) -> None:
        """A sensor was added (or its description, units or type changed)."""

    def sensor_removed(self, name: str) -> None:
        """A sensor was removed (or is no longer wanted)."""

    def sensor_updated(self, name: str, value: bytes, status: _Status, timestamp: float) -> None:
        """A sensor has a new reading (`value` still encoded)."""

    def batch_start(self) -> None:
        """A group of related calls begins."""

    def batch_stop(self) -> None:
        """A group of related calls ends."""

    def state_updated(self, state: SyncState) -> None:
        """The synchronisation state changed."""


@functools.lru_cache(maxsize=1024)
def _discrete_enum(values: Tuple[bytes, ...]) -> Type[enum.Enum]:
    """An enum whose members (``ENUM0``, ...) encode to `values` (shared per value list)."""
    cls = enum.Enum("discrete", [(f"ENUM{i}", i) for i in range(len(values))])  # type: ignore[misc]
    for member, value in zip(cls, values):
        member.katcp_value = value  # type: ignore[attr-defined]
    return cls


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

    SENSOR_TYPES: Dict[str, type] = {
        "integer": int,
        "float": float,
        "boolean": bool,
        "timestamp": Timestamp,
        "discrete": enum.Enum,
        "address": Address,
        "string": bytes,
        "lru": Lru,
    }

    def __init__(self, client: Client, enum_types: Sequence[Type[enum.Enum]] = ()) -> None:
        self.client = client
        self.enum_types = list(enum_types)
        self.sensors = SensorSet()
        self.synced = asyncio.Event()
        self.logger = logger
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
        self, sensor: Sensor[Any], value: Any, status: _Status, timestamp: float
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
        local_names = [local] if isinstance(local, str) else list(local)
        old = self._mirrors.get(name)
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

    def sensor_updated(self, name: str, value: bytes, status: _Status, timestamp: float) -> None:
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
                if sensor.status is not Sensor.Status.UNREACHABLE:
                    sensor.set_value(sensor.value, Sensor.Status.UNREACHABLE, now)


def _overrides(watcher: AbstractSensorWatcher, method: str) -> bool:
    return getattr(type(watcher), method) is not getattr(AbstractSensorWatcher, method)


class _WatcherState:
    """The monitor's book-keeping for one watcher."""

    __slots__ = ("batched", "known", "state", "watcher")

    def __init__(self, watcher: AbstractSensorWatcher) -> None:
        self.watcher = watcher
        #: Sensors this watcher has been told about (via sensor_added).
        self.known: Dict[str, _Info] = {}
        self.state: Optional[SyncState] = None
        #: Whether batch_start/batch_stop do anything (skipped on the hot path if not).
        self.batched = _overrides(watcher, "batch_start") or _overrides(watcher, "batch_stop")


def _call(what: str, func: Callable[..., Any], *args: Any) -> Any:
    """Call into a watcher, logging (not propagating) its exceptions."""
    try:
        return func(*args)
    except Exception:
        logger.exception("Exception in sensor watcher %s", what)
        return None


class _SensorMonitor:
    """Keeps a client's sensor watchers in step with the server (one per client)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._watchers: List[_WatcherState] = []
        # raw sensor name -> (name, watchers); rebuilt by each sync
        self._dispatch: Dict[bytes, Tuple[str, Tuple[_WatcherState, ...]]] = {}
        self._subscribed: Set[str] = set()
        self._task: Optional[asyncio.Task[None]] = None
        self._generation = 0
        self._resync = False
        self._backing_off = False  # the sync task is waiting to retry after a failure
        self._closed = False
        self._time_scale = 1.0
        client.add_connected_callback(self._connected)
        client.add_disconnected_callback(self._disconnected)
        client._add_raw_inform_callback("sensor-status", self._sensor_status)
        client._add_raw_inform_callback("interface-changed", self._interface_changed)
        client._add_raw_inform_callback("device-changed", self._interface_changed)

    # -- watchers ----------------------------------------------------------------------------

    def add_watcher(self, watcher: AbstractSensorWatcher) -> None:
        ws = _WatcherState(watcher)
        self._watchers.append(ws)
        if self.client.is_connected:
            self._set_state(ws, SyncState.SYNCING)
            self._request_sync()
        else:
            self._set_state(ws, SyncState.DISCONNECTED)

    def remove_watcher(self, watcher: AbstractSensorWatcher) -> None:
        for ws in self._watchers:
            if ws.watcher is watcher:
                self._watchers.remove(ws)
                self._rebuild_dispatch()
                if self.client.is_connected:
                    self._request_sync()  # to unsubscribe what nobody wants any more
                return

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._cancel_sync()
        for ws in self._watchers:
            self._set_state(ws, SyncState.CLOSED)

    # -- client events -----------------------------------------------------------------------

    def _connected(self) -> None:
        version = self.client.protocol_version
        self._time_scale = 0.001 if version is not None and version[0] < 5 else 1.0
        self._subscribed = set()
        self._request_sync()

    def _disconnected(self) -> None:
        self._cancel_sync()
        self._subscribed = set()
        if not self._closed:
            for ws in self._watchers:
                self._set_state(ws, SyncState.DISCONNECTED)

    def _interface_changed(self, msg: Message) -> None:
        if self.client.is_connected:
            self._request_sync()

    def _sensor_status(self, msg: Message) -> None:
        """Hot path: one ``#sensor-status <time> <n> (<name> <status> <value>)*n``."""
        args = msg.arguments
        if len(args) == 5 and args[1] == b"1":
            entry = self._dispatch.get(args[2])
            if entry is None:
                return
            status = _STATUS_FROM_WIRE.get(args[3])
            try:
                timestamp = float(args[0]) * self._time_scale
            except ValueError:
                status = None
            if status is None:
                logger.warning("Malformed #sensor-status: %s", msg)
                return
            name, watchers = entry
            value = args[4]
            for ws in watchers:
                watcher = ws.watcher
                try:
                    if ws.batched:
                        watcher.batch_start()
                        watcher.sensor_updated(name, value, status, timestamp)
                        watcher.batch_stop()
                    else:
                        watcher.sensor_updated(name, value, status, timestamp)
                except Exception:
                    logger.exception("Exception in sensor watcher while handling %s", msg)
            return
        self._sensor_status_general(msg)

    def _sensor_status_general(self, msg: Message) -> None:
        """Any number of (name, status, value) triples."""
        args = msg.arguments
        try:
            timestamp = float(args[0]) * self._time_scale
            count = int(args[1])
            if count < 0 or len(args) != 2 + 3 * count:
                raise ValueError("wrong number of arguments")
            updates = []
            for i in range(2, len(args), 3):
                status = _STATUS_FROM_WIRE[args[i + 1]]
                updates.append((args[i], args[i + 2], status))
        except (ValueError, IndexError, KeyError):
            logger.warning("Malformed #sensor-status: %s", msg)
            return
        affected: Dict[int, _WatcherState] = {}
        for raw_name, _, _ in updates:
            entry = self._dispatch.get(raw_name)
            if entry is not None:
                for ws in entry[1]:
                    affected[id(ws)] = ws
        for ws in affected.values():
            _call("batch_start", ws.watcher.batch_start)
        for raw_name, value, status in updates:
            entry = self._dispatch.get(raw_name)
            if entry is not None:
                for ws in entry[1]:
                    _call(
                        "sensor_updated",
                        ws.watcher.sensor_updated,
                        entry[0],
                        value,
                        status,
                        timestamp,
                    )
        for ws in affected.values():
            _call("batch_stop", ws.watcher.batch_stop)

    # -- synchronisation ---------------------------------------------------------------------

    def _set_state(self, ws: _WatcherState, state: SyncState) -> None:
        if ws.state is not state and ws.state is not SyncState.CLOSED:
            ws.state = state
            _call("state_updated", ws.watcher.state_updated, state)

    def _request_sync(self) -> None:
        if self._closed:
            return
        if self._task is not None and not self._task.done():
            if not self._backing_off:
                self._resync = True
                return
            self._cancel_sync()  # waiting to retry: retry now instead
        self._generation += 1
        self._resync = False
        self._task = self.client._create_task(self._sync(self._generation))

    def _cancel_sync(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._generation += 1

    async def _sync(self, generation: int) -> None:
        delay = _RETRY_FIRST
        try:
            while True:
                try:
                    self._resync = False
                    await self._sync_once(generation)
                except (FailReply, InvalidReply, asyncio.TimeoutError) as exc:
                    # The server is reachable but did not answer as hoped: try again later
                    # (sooner if it announces an interface change).
                    logger.warning("Sensor sync failed (%s); retrying in %g s", exc, delay)
                    self._backing_off = True
                    try:
                        await asyncio.sleep(delay)
                    finally:
                        self._backing_off = False
                    delay = min(2 * delay, _RETRY_MAX)
                    self._resync = True
                if generation != self._generation:
                    return
                if not self._resync:
                    break
            for ws in self._watchers:
                self._set_state(ws, SyncState.SYNCED)
        except ConnectionError as exc:
            # A disconnect also cancels us; the next connection starts a new sync.
            logger.info("Sensor sync interrupted: %s", exc)
        finally:
            if generation == self._generation:
                self._task = None

    async def _sync_once(self, generation: int) -> None:
        for ws in self._watchers:
            self._set_state(ws, SyncState.SYNCING)
        _, informs = await self.client.request("sensor-list")
        if generation != self._generation:
            return
        listing = _parse_sensor_list(informs)
        wanted_all: Set[str] = set()
        for ws in list(self._watchers):
            wanted_all.update(self._update_watcher(ws, listing))
        self._rebuild_dispatch()
        unwanted = sorted((self._subscribed - wanted_all) & listing.keys())
        self._subscribed &= wanted_all
        await self._set_sampling(unwanted, "none", generation)
        if generation != self._generation:
            return
        self._subscribed |= await self._set_sampling(sorted(wanted_all), "auto", generation)

    def _update_watcher(self, ws: _WatcherState, listing: Dict[str, _Info]) -> Iterable[str]:
        """Tell one watcher what changed since its last sync; return the names it wants."""
        watcher = ws.watcher
        wanted: Dict[str, _Info] = {}
        for name, info in listing.items():
            if _call("filter", watcher.filter, name, info[0], info[1], info[2], *info[3]):
                wanted[name] = info
        removed = [name for name in ws.known if name not in wanted]
        added = [name for name, info in wanted.items() if ws.known.get(name) != info]
        if removed or added:
            _call("batch_start", watcher.batch_start)
            for name in removed:
                _call("sensor_removed", watcher.sensor_removed, name)
            for name in added:
                desc, units, type_name, params = wanted[name]
                _call("sensor_added", watcher.sensor_added, name, desc, units, type_name, *params)
            _call("batch_stop", watcher.batch_stop)
        ws.known = wanted
        return wanted

    def _rebuild_dispatch(self) -> None:
        by_name: Dict[str, List[_WatcherState]] = {}
        for ws in self._watchers:
            for name in ws.known:
                by_name.setdefault(name, []).append(ws)
        self._dispatch = {
            name.encode("utf-8"): (name, tuple(watchers)) for name, watchers in by_name.items()
        }

    async def _set_sampling(self, names: List[str], strategy: str, generation: int) -> Set[str]:
        """Set `strategy` on `names`; return the names for which that worked."""
        if not names:
            return set()
        client = self.client
        if len(names) > 1 and "B" in client.protocol_flags:
            try:
                await client.request("sensor-sampling", ",".join(names), strategy)
                return set(names)
            except (FailReply, InvalidReply) as exc:
                # Bulk requests are atomic: one bad name fails them all. Go one by one.
                logger.info("Bulk ?sensor-sampling failed (%s); subscribing one at a time", exc)
        results = await asyncio.gather(
            *(client.request("sensor-sampling", name, strategy) for name in names),
            return_exceptions=True,
        )
        done: Set[str] = set()
        for name, result in zip(names, results):
            if isinstance(result, (FailReply, InvalidReply)):
                logger.warning("Could not set strategy %s on sensor %s: %s", strategy, name, result)
            elif isinstance(result, BaseException):
                raise result
            else:
                done.add(name)
        return done


def _parse_sensor_list(informs: List[Message]) -> Dict[str, _Info]:
    listing: Dict[str, _Info] = {}
    for inform in informs:
        args = inform.arguments
        if len(args) < 4:
            logger.warning("Ignoring malformed #sensor-list: %s", inform)
            continue
        try:
            name = args[0].decode("utf-8")
        except UnicodeDecodeError:
            logger.warning("Ignoring #sensor-list with a non-UTF-8 name: %s", inform)
            continue
        listing[name] = (
            args[1].decode("utf-8", errors="replace"),
            args[2].decode("utf-8", errors="replace"),
            args[3].decode("utf-8", errors="replace"),
            tuple(args[4:]),
        )
    return listing
