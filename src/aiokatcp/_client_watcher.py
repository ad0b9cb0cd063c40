"""Client-side sensor mirroring: sensor watchers and the monitor that feeds them.

This module owns :class:`SyncState`, :class:`AbstractSensorWatcher` (both
re-exported from :mod:`aiokatcp.client`, which defines ``SensorWatcher``) and
:class:`SensorMonitor`, which a :class:`~aiokatcp.client.Client` creates on
its first ``add_sensor_watcher``. The monitor talks to the client only
through :class:`WatcherHost` (declared here, implemented by the client), so
this module does not import the client.

The batch protocol (documented for users in ``doc/sensor-watcher.rst``):

* watchers are duck-typed: every method is looked up on the instance;
* on connection every watcher gets ``state_updated(SYNCING)`` at once (the
  client calls :meth:`SensorMonitor.connected` before ``wait_connected``
  returns);
* each ``?sensor-list`` result is one ``batch_start ... batch_stop`` per
  watcher, even when nothing changed: in server order, each new or changed
  sensor gets ``filter`` then ``sensor_added`` (or ``sensor_removed`` if it
  was mirrored and is now filtered out); unchanged sensors are not filtered
  again; sensors that vanished get ``sensor_removed`` at the end;
* each ``#sensor-status`` is its own batch, for every watcher;
* a sensor nobody wants any more is unsubscribed (``none``) at once, without
  re-listing; a ``#sensor-status`` for a known sensor nobody wants is
  answered with ``none`` again;
* a watcher added while connected gets the current state, then the listing
  and last readings from the monitor's cache in one batch; only the
  ``?sensor-sampling`` changes it needs go on the wire (a watcher added while
  disconnected gets an empty batch and no state call);
* after a re-list only new or changed sensors are re-subscribed; after a
  reconnect, all of them;
* a failed sync is retried with the client's back-off
  (:func:`aiokatcp._backoff.backoff_delays`), at once on ``#interface-changed``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import (
    Any,
    Awaitable,
    Callable,
    Coroutine,
    Dict,
    FrozenSet,
    Iterator,
    List,
    Optional,
    Set,
    Tuple,
)

from typing_extensions import Protocol

from ._backoff import backoff_delays
from ._message import Message
from ._sensor_wire import (
    STATUS_FROM_WIRE,
    SensorInfo,
    parse_sensor_list,
    parse_sensor_status,
)
from .exceptions import FailReply, InvalidReply
from .sensor import Sensor

__all__ = [
    "AbstractSensorWatcher",
    "SensorMonitor",
    "SyncState",
    "WatcherHost",
]

_UNREACHABLE = Sensor.Status.UNREACHABLE
_Reply = Tuple[List[bytes], List[Message]]


class WatcherHost(Protocol):
    """What the :class:`SensorMonitor` needs of its client (implemented by the client)."""

    @property
    def is_connected(self) -> bool: ...

    @property
    def protocol_flags(self) -> FrozenSet[str]: ...

    @property
    def protocol_version(self) -> Optional[Tuple[int, int]]: ...

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]: ...

    @property
    def backoff(self) -> Tuple[float, float]: ...

    def request(self, name: str, *args: Any) -> Awaitable[_Reply]: ...

    def create_task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]: ...

    def add_connected_callback(self, callback: Callable[[], None]) -> None: ...

    def add_disconnected_callback(self, callback: Callable[[], None]) -> None: ...


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

    def sensor_updated(
        self, name: str, value: bytes, status: Sensor.Status, timestamp: float
    ) -> None:
        """A sensor has a new reading (`value` still encoded)."""

    def batch_start(self) -> None:
        """A group of related calls begins."""

    def batch_stop(self) -> None:
        """A group of related calls ends."""

    def state_updated(self, state: SyncState) -> None:
        """The synchronisation state changed."""


def _is_default(watcher: Any, method: str) -> bool:
    """Whether `watcher`'s `method` is AbstractSensorWatcher's no-op (safe to skip)."""
    if method in getattr(watcher, "__dict__", {}):
        return False
    return getattr(type(watcher), method, None) is getattr(AbstractSensorWatcher, method)


def _accept_all(*args: Any) -> bool:
    return True


class _WatcherState:
    """The monitor's book-keeping for one watcher."""

    __slots__ = ("batched", "known", "state", "watcher")

    def __init__(self, watcher: Any) -> None:
        self.watcher = watcher
        #: Sensors this watcher has been told about (via sensor_added), with their info.
        self.known: Dict[str, SensorInfo] = {}
        self.state: Optional[SyncState] = None
        #: Whether batch_start/batch_stop do anything (skipped on the hot path if not).
        self.batched = not (
            _is_default(watcher, "batch_start") and _is_default(watcher, "batch_stop")
        )


class SensorMonitor:
    """Keeps a client's sensor watchers in step with the server (one per client)."""

    def __init__(self, host: WatcherHost) -> None:
        self.host = host
        self.logger = host.logger
        self._watchers: List[_WatcherState] = []
        #: The last ``?sensor-list`` of this connection (server order); None if not yet listed.
        self._listing: Optional[Dict[str, SensorInfo]] = None
        #: Last reading (value, status, timestamp) of each subscribed sensor.
        self._readings: Dict[str, Tuple[bytes, Sensor.Status, float]] = {}
        # raw sensor name -> (name, watchers); rebuilt whenever `known` changes
        self._dispatch: Dict[bytes, Tuple[str, Tuple[_WatcherState, ...]]] = {}
        self._subscribed: Set[str] = set()
        #: Names with a ``none`` request in flight.
        self._unsubscribing: Set[str] = set()
        self._task: Optional[asyncio.Task[None]] = None
        self._generation = 0
        self._resync = False
        self._backing_off = False  # the sync task is waiting to retry after a failure
        self._closed = False
        self._delays: Optional[Iterator[float]] = None
        host.add_connected_callback(self.connected)
        host.add_disconnected_callback(self.disconnected)

    # -- watchers ----------------------------------------------------------------------------

    def add_watcher(self, watcher: Any) -> None:
        ws = _WatcherState(watcher)
        self._watchers.append(ws)
        if not self.host.is_connected:
            # As 2.x: no state call until connected, but the (empty) replay batch.
            ws.state = SyncState.DISCONNECTED
            self._call(watcher.batch_start)
            self._call(watcher.batch_stop)
            return
        listing = self._listing
        if listing is None:
            self._set_state(ws, SyncState.SYNCING)
            if self._task is None:  # the first watcher: nothing listed yet
                self._request_sync()
            return  # else the running sync has not listed yet; it will include this watcher
        # As 2.x: the current state first, then the replay of the cache in one batch.
        self._set_state(ws, SyncState.SYNCING if self._task is not None else SyncState.SYNCED)
        self._update_watcher(ws, listing, replay=True)
        dispatch = self._dispatch  # only this watcher's entries change
        for name in ws.known:
            raw = name.encode("utf-8")
            entry = dispatch.get(raw)
            dispatch[raw] = (name, (ws,)) if entry is None else (name, (*entry[1], ws))
        needed = sorted(set(ws.known) - self._subscribed)
        if needed:  # SYNCED again once its new sensors are subscribed
            self._set_state(ws, SyncState.SYNCING)
            self._subscribed.update(needed)
            self.host.create_task(self._subscribe_later(needed, self._generation))

    def remove_watcher(self, watcher: Any) -> None:
        for ws in self._watchers:
            if ws.watcher is watcher:
                self._watchers.remove(ws)
                self._rebuild_dispatch()
                unwanted = sorted(
                    name for name in ws.known if name in self._subscribed and self._unwanted(name)
                )
                self._subscribed.difference_update(unwanted)
                for name in unwanted:
                    self._readings.pop(name, None)
                if unwanted and self.host.is_connected:
                    self.host.create_task(self._unsubscribe(unwanted))
                return

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._cancel_sync()
        for ws in self._watchers:
            self._set_state(ws, SyncState.CLOSED)

    # -- client events -----------------------------------------------------------------------

    def connected(self) -> None:
        """The client became connected: every watcher is SYNCING from now (synchronously)."""
        self._subscribed = set()
        self._readings = {}
        self._listing = None
        self._delays = None
        for ws in self._watchers:
            self._set_state(ws, SyncState.SYNCING)
        self._request_sync()

    def disconnected(self) -> None:
        self._cancel_sync()
        self._subscribed = set()
        self._readings = {}
        self._listing = None
        if not self._closed:
            for ws in self._watchers:
                self._set_state(ws, SyncState.DISCONNECTED)

    def handle_inform(self, msg: Message) -> bool:
        """Handle the informs the monitor needs; ``True`` if `msg` was one of them."""
        name = msg.name
        if name == "sensor-status":
            self._sensor_status(msg)
            return True
        if name in ("interface-changed", "device-changed"):
            if self.host.is_connected:
                self._request_sync()
            return True
        return False

    def _sensor_status(self, msg: Message) -> None:
        """Hot path: one ``#sensor-status <time> <n> (<name> <status> <value>)*n``."""
        args = msg.arguments
        if len(args) == 5 and args[1] == b"1":
            entry = self._dispatch.get(args[2])
            if entry is None:
                self._not_wanted(args[2])
                return
            status = STATUS_FROM_WIRE.get(args[3])
            try:
                timestamp = float(args[0])  # seconds: the client converts v4 at the wire
            except ValueError:
                status = None
            if status is None:
                self.logger.warning("Malformed #sensor-status: %s", msg)
                return
            name, watchers = entry
            value = args[4]
            self._readings[name] = (value, status, timestamp)
            for ws in self._watchers:
                watcher = ws.watcher
                try:
                    if ws.batched:
                        watcher.batch_start()
                        if ws in watchers:
                            watcher.sensor_updated(name, value, status, timestamp)
                        watcher.batch_stop()
                    elif ws in watchers:
                        watcher.sensor_updated(name, value, status, timestamp)
                except Exception:
                    self.logger.exception("Exception in sensor watcher while handling %s", msg)
            return
        self._sensor_status_general(msg)

    def _sensor_status_general(self, msg: Message) -> None:
        """Any number of (name, status, value) triples."""
        parsed = parse_sensor_status(msg.arguments)
        if parsed is None:
            self.logger.warning("Malformed #sensor-status: %s", msg)
            return
        timestamp, updates = parsed
        for ws in self._watchers:
            self._call(ws.watcher.batch_start)
        for raw_name, status, value in updates:
            entry = self._dispatch.get(raw_name)
            if entry is None:
                self._not_wanted(raw_name)
                continue
            self._readings[entry[0]] = (value, status, timestamp)
            for ws in entry[1]:
                self._call(ws.watcher.sensor_updated, entry[0], value, status, timestamp)
        for ws in self._watchers:
            self._call(ws.watcher.batch_stop)

    def _not_wanted(self, raw_name: bytes) -> None:
        """A reading for a sensor nobody wants: unsubscribe it again (if it is known)."""
        listing = self._listing
        if listing is None or not self.host.is_connected:
            return
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            return
        if name in listing and name not in self._unsubscribing:
            self._subscribed.discard(name)
            self._unsubscribing.add(name)
            self.host.create_task(self._unsubscribe([name]))

    # -- synchronisation ---------------------------------------------------------------------

    def _call(self, func: Callable[..., Any], *args: Any) -> Any:
        """Call into a watcher, logging (not propagating) its exceptions."""
        try:
            return func(*args)
        except Exception:
            self.logger.exception("Exception in sensor watcher %s", getattr(func, "__name__", func))
            return None

    def _set_state(self, ws: _WatcherState, state: SyncState) -> None:
        if ws.state is not state and ws.state is not SyncState.CLOSED:
            ws.state = state
            self._call(ws.watcher.state_updated, state)

    def _unwanted(self, name: str) -> bool:
        return not any(name in ws.known for ws in self._watchers)

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
        self._task = self.host.create_task(self._sync(self._generation))

    def _cancel_sync(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._generation += 1

    async def _sync(self, generation: int) -> None:
        try:
            while True:
                try:
                    self._resync = False
                    await self._sync_once(generation)
                except (FailReply, InvalidReply, asyncio.TimeoutError) as exc:
                    # The server is reachable but did not answer as hoped: try again later
                    # (sooner if it announces an interface change).
                    if self._delays is None:
                        self._delays = backoff_delays(*self.host.backoff)
                    delay = next(self._delays)
                    self.logger.warning("Sensor sync failed (%s); retrying in %.3g s", exc, delay)
                    self._backing_off = True
                    try:
                        await asyncio.sleep(delay)
                    finally:
                        self._backing_off = False
                    self._resync = True
                if generation != self._generation:
                    return
                if not self._resync:
                    break
            self._delays = None
            self._task = None
            for ws in self._watchers:
                self._set_state(ws, SyncState.SYNCED)
        except ConnectionError as exc:
            # A disconnect also cancels us; the next connection starts a new sync.
            self.logger.info("Sensor sync interrupted: %s", exc)
        finally:
            if generation == self._generation:
                self._task = None

    async def _sync_once(self, generation: int) -> None:
        for ws in self._watchers:
            self._set_state(ws, SyncState.SYNCING)
        _, informs = await self.host.request("sensor-list")
        if generation != self._generation:
            return
        listing = parse_sensor_list(informs, self.logger.warning)
        old = self._listing
        self._listing = listing
        changed = {name for name, info in listing.items() if old is None or old.get(name) != info}
        for ws in list(self._watchers):
            self._update_watcher(ws, listing, replay=False)
        self._rebuild_dispatch()
        wanted_all: Set[str] = set()
        for ws in self._watchers:
            wanted_all.update(ws.known)
        for name in list(self._readings):
            if name in changed or name not in wanted_all:
                del self._readings[name]
        unwanted = sorted((self._subscribed - wanted_all) & listing.keys())
        # Vanished sensors need no unsubscribing; replaced ones must be subscribed again.
        self._subscribed &= wanted_all
        self._subscribed -= changed
        needed = [name for name in listing if name in wanted_all and name not in self._subscribed]
        self._subscribed.update(needed)
        await self._set_sampling(unwanted, "none")
        if generation != self._generation:
            return
        failed = set(needed) - await self._set_sampling(needed, "auto")
        self._subscribed -= failed

    def _update_watcher(
        self, ws: _WatcherState, listing: Dict[str, SensorInfo], replay: bool
    ) -> None:
        """One batch for one watcher: what changed in `listing` (see the module rules).

        With `replay` (a new watcher) the last known readings follow each added sensor.
        """
        watcher = ws.watcher
        known = ws.known
        new_known: Dict[str, SensorInfo] = {}
        # Bound once: this loop runs once per sensor (10k sensors on big devices).
        filt, added, updated = watcher.filter, watcher.sensor_added, watcher.sensor_updated
        if _is_default(watcher, "filter"):
            filt = _accept_all  # the same answer without a call per sensor
        readings = self._readings if replay and not _is_default(watcher, "sensor_updated") else {}
        log = self.logger
        self._call(watcher.batch_start)
        if not known and filt is _accept_all and not readings:
            # A new watcher that wants everything: nothing to compare, filter or replay.
            for name, (desc, units, type_name, params) in listing.items():
                try:
                    added(name, desc, units, type_name, *params)
                except Exception:
                    log.exception("Exception in sensor watcher while adding %s", name)
            self._call(watcher.batch_stop)
            ws.known = dict(listing)
            return
        for name, info in listing.items():
            old = known.get(name)
            if old == info:  # unchanged (also across a reconnect): not filtered again
                new_known[name] = info
                continue
            desc, units, type_name, params = info
            try:
                wanted = filt(name, desc, units, type_name, *params)
            except Exception:
                log.exception("Exception in sensor watcher filter")
                wanted = False
            if wanted:
                new_known[name] = info
                try:
                    added(name, desc, units, type_name, *params)
                    reading = readings.get(name)
                    if reading is not None:
                        updated(name, *reading)
                except Exception:
                    log.exception("Exception in sensor watcher while adding %s", name)
            elif old is not None:
                self._call(watcher.sensor_removed, name)
        for name in known:
            if name not in listing:
                self._call(watcher.sensor_removed, name)
        self._call(watcher.batch_stop)
        ws.known = new_known

    def _rebuild_dispatch(self) -> None:
        by_name: Dict[str, List[_WatcherState]] = {}
        for ws in self._watchers:
            for name in ws.known:
                by_name.setdefault(name, []).append(ws)
        self._dispatch = {
            name.encode("utf-8"): (name, tuple(watchers)) for name, watchers in by_name.items()
        }

    async def _subscribe_later(self, names: List[str], generation: int) -> None:
        """Subscribe the sensors a newly added watcher needs, then mark watchers synced."""
        try:
            failed = set(names) - await self._set_sampling(names, "auto")
        except ConnectionError:
            return
        if generation != self._generation:
            return
        self._subscribed -= failed
        if self._task is None:
            for ws in self._watchers:
                self._set_state(ws, SyncState.SYNCED)

    async def _unsubscribe(self, names: List[str]) -> None:
        unsubscribing = self._unsubscribing
        unsubscribing.update(names)  # a burst of unwanted readings sends one ``none``
        try:
            await self._set_sampling(names, "none")
        except (ConnectionError, asyncio.TimeoutError) as exc:
            self.logger.info("Could not unsubscribe %s: %s", ",".join(names), exc)
        finally:
            unsubscribing.difference_update(names)

    async def _set_sampling(self, names: List[str], strategy: str) -> Set[str]:
        """Set `strategy` on `names`; return the names for which that worked."""
        if not names:
            return set()
        host = self.host
        if len(names) > 1 and "B" in host.protocol_flags:
            try:
                await host.request("sensor-sampling", ",".join(names), strategy)
                return set(names)
            except (FailReply, InvalidReply) as exc:
                # Bulk requests are atomic: one bad name fails them all. Go one by one.
                self.logger.info(
                    "Bulk ?sensor-sampling failed (%s); subscribing one at a time", exc
                )
        results = await asyncio.gather(
            *(host.request("sensor-sampling", name, strategy) for name in names),
            return_exceptions=True,
        )
        done: Set[str] = set()
        for name, result in zip(names, results):
            if isinstance(result, (FailReply, InvalidReply)):
                self.logger.warning(
                    "Could not set strategy %s on sensor %s: %s", strategy, name, result
                )
            elif isinstance(result, BaseException):
                raise result
            else:
                done.add(name)
        return done
