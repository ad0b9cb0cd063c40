"""One sensor of a remote device, as an object (see :class:`aiokatcp.RemoteDevice`).

The sensor keeps its listeners, waiters and remembered strategy by name for
the life of the device; the device feeds it readings and existence changes
through this module's functions. What it needs from the device is :class:`SensorOwner`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, List, Optional, Protocol, Tuple

from ._compat import timeout as timeout_scope
from ._message import Message
from ._remote_names import Condition, DeviceState, matches, python_name
from .exceptions import FailReply, InvalidReply
from .sensor import Reading, _Status  # _Status: the type of Sensor.Status, for typing

__all__ = ["Listener", "RemoteSensor", "SensorOwner", "abort_waiters", "deliver", "set_present"]

logger = logging.getLogger("aiokatcp.remote")

#: A sensor listener: called with the sensor and its new reading.
Listener = Callable[["RemoteSensor", Reading[Any]], None]


class SensorOwner(Protocol):
    """What a :class:`RemoteSensor` needs from its device."""

    @property
    def state(self) -> DeviceState:
        """The device's state."""

    async def request(
        self, name: str, *args: Any, timeout: Optional[float] = None
    ) -> Tuple[List[bytes], List[Message]]:
        """Send a request; return the reply arguments after ``ok`` and the informs."""


class RemoteSensor:
    """One sensor of a remote device, kept by name.

    The object lives as long as the :class:`RemoteDevice`: listeners and a
    sampling strategy set on it stay when the sensor disappears from the
    device and apply again when it comes back (or when it first appears: a
    sensor object can be obtained with ``dev.sensor["name"]`` before the
    device has such a sensor).

    Attributes
    ----------
    name : str
        The sensor's KATCP name.
    description, units, type_name : str
        From ``?sensor-list`` (empty until the sensor has been seen).
    reading : Optional[Reading]
        The latest reading (``None`` before the first one). While the device
        is disconnected its status is ``unreachable`` (the value is kept).
    received_timestamp : Optional[float]
        Local :func:`time.time` when :attr:`reading` arrived.
    """

    def __init__(self, device: SensorOwner, name: str) -> None:
        self.device = device
        self.name = name
        self.description = ""
        self.units = ""
        self.type_name = ""
        self.reading: Optional[Reading[Any]] = None
        self.received_timestamp: Optional[float] = None
        self._exists = False
        self._listeners: List[Listener] = []
        self._waiters: List[Tuple[Condition, asyncio.Future[Reading[Any]]]] = []
        self._strategy: Optional[Tuple[str, Tuple[Any, ...]]] = None

    def __repr__(self) -> str:
        return f"<RemoteSensor {self.name!r} {self.reading!r}>"

    @property
    def python_name(self) -> str:
        """The attribute name under :attr:`RemoteDevice.sensor`."""
        return python_name(self.name)

    @property
    def exists(self) -> bool:
        """Whether the device currently has this sensor (as of the last sync)."""
        return self._exists

    @property
    def value(self) -> Any:
        """The value of the latest reading (``None`` before the first one)."""
        return None if self.reading is None else self.reading.value

    @property
    def status(self) -> Optional[_Status]:
        """The status of the latest reading (``None`` before the first one)."""
        return None if self.reading is None else self.reading.status

    @property
    def timestamp(self) -> Optional[float]:
        """The device's timestamp of the latest reading (``None`` before the first one)."""
        return None if self.reading is None else self.reading.timestamp

    @property
    def strategy(self) -> Optional[Tuple[str, Tuple[Any, ...]]]:
        """The remembered ``(strategy, params)``, or ``None`` (the watcher's ``auto``)."""
        return self._strategy

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(sensor, reading)`` on the loop for every new reading.

        Exceptions from the listener are logged, not propagated.
        """
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Undo :meth:`add_listener` (no error if it is not registered)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def wait(self, condition: Condition, timeout: Optional[float] = None) -> Reading[Any]:
        """Wait until the sensor's reading satisfies `condition`; return that reading.

        Parameters
        ----------
        condition
            A predicate, called with each :class:`~aiokatcp.Reading`, or a
            value: it matches a reading with a valid status (nominal, warn,
            error) whose value is equal or encodes to the same KATCP bytes.
        timeout
            Seconds to wait (``None``: no limit). The current reading counts.

        Raises
        ------
        asyncio.TimeoutError
            if `timeout` expires first
        """
        if self.reading is not None and matches(self.reading, condition):
            return self.reading
        future: asyncio.Future[Reading[Any]] = asyncio.get_running_loop().create_future()
        entry = (condition, future)
        self._waiters.append(entry)
        try:
            if timeout is None:
                return await future
            try:
                async with timeout_scope(timeout):
                    return await future
            except asyncio.TimeoutError:
                raise asyncio.TimeoutError(
                    f"sensor {self.name} of {self.device} did not meet the condition "
                    f"within {timeout} s (last reading: {self.reading})"
                ) from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    async def set_strategy(self, strategy: str, *params: Any) -> None:
        """Use sampling `strategy` for this sensor, now and after every re-sync.

        The strategy is remembered even if the sensor does not exist yet or
        the device is not connected; it is then applied when the sensor
        appears. Strategies and parameters are those of ``?sensor-sampling``
        (``"event"``, ``"period", 0.5``, ``"event-rate", 1, 10``, ...).

        Raises
        ------
        FailReply, InvalidReply
            if the device rejects the strategy (it is then not remembered)
        """
        previous = self._strategy
        self._strategy = (strategy, params)
        if self._exists and self.device.state in (DeviceState.SYNCED, DeviceState.SYNCING):
            try:
                await self.device.request("sensor-sampling", self.name, strategy, *params)
            except (FailReply, InvalidReply):
                self._strategy = previous
                raise
            except ConnectionError:
                pass  # remembered: applied after the reconnect

    def drop_strategy(self) -> None:
        """Forget the strategy set by :meth:`set_strategy`.

        The device's current subscription is not changed; after the next
        reconnect the sensor is sampled with ``auto`` again.
        """
        self._strategy = None


RemoteSensor.__module__ = "aiokatcp.remote"


# -- how the device feeds a sensor (functions of this module, so the device needs no access
# -- to the sensor's private state) ----------------------------------------------------------


def deliver(sensor: RemoteSensor, reading: Reading[Any]) -> None:
    """A new reading arrived: store it, call the listeners, wake matching waiters."""
    sensor.reading = reading
    sensor.received_timestamp = time.time()
    if sensor._listeners:
        for listener in list(sensor._listeners):
            try:
                listener(sensor, reading)
            except Exception:
                logger.exception("Exception in listener %r of sensor %s", listener, sensor.name)
    if sensor._waiters:
        for condition, future in list(sensor._waiters):
            if future.done():
                continue
            try:
                if matches(reading, condition):
                    future.set_result(reading)
            except Exception as exc:
                future.set_exception(exc)


def set_present(
    sensor: RemoteSensor, present: bool, description: str = "", units: str = "", type_name: str = ""
) -> None:
    """The device has (with this description, units and type) or no longer has the sensor."""
    sensor._exists = present
    if present:
        sensor.description = description
        sensor.units = units
        sensor.type_name = type_name


def abort_waiters(sensor: RemoteSensor, exc: BaseException) -> None:
    """Fail every pending :meth:`RemoteSensor.wait` with `exc` (the device was closed)."""
    for _, future in sensor._waiters:
        if not future.done():
            future.set_exception(exc)
