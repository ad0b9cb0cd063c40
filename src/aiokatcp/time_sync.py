"""Sensors that report how well the host clock is synchronised (Linux).

Pure: no asyncio. Call :meth:`TimeSyncUpdater.update` periodically (for
example from a service task) to refresh the sensors from ``adjtimex(2)``.
"""

from __future__ import annotations

import enum
from typing import Any, Mapping

from . import adjtimex
from .sensor import Sensor

__all__ = ["ClockState", "TimeSyncUpdater"]


class ClockState(enum.Enum):
    """Kernel clock state, as returned by ``adjtimex(2)``."""

    OK = adjtimex.TIME_OK
    INS = adjtimex.TIME_INS
    DEL = adjtimex.TIME_DEL
    OOP = adjtimex.TIME_OOP
    WAIT = adjtimex.TIME_WAIT
    ERROR = adjtimex.TIME_ERROR


class TimeSyncUpdater:
    """Keep clock-synchronisation sensors up to date.

    Parameters
    ----------
    sensor_map
        Sensors to update, keyed by what they report: ``"state"`` (a
        :class:`ClockState` sensor), ``"maxerror"`` and ``"esterror"``
        (float sensors, in seconds). Any subset may be given.

    Raises
    ------
    KeyError
        if `sensor_map` has any other key
    """

    _KEYS = frozenset({"state", "maxerror", "esterror"})

    def __init__(self, sensor_map: Mapping[str, Sensor[Any]]) -> None:
        for key in sensor_map:
            if key not in self._KEYS:
                raise KeyError(f"Key '{key}' is not valid")  # (aiokatcp 2.x's text)
        self.sensor_map = sensor_map

    def update(self) -> None:
        """Read the kernel clock state and set every sensor from it.

        Where ``adjtimex`` is not available, every sensor becomes INACTIVE.
        """
        try:
            state, timex = adjtimex.get_adjtimex()
        except NotImplementedError:
            for sensor in self.sensor_map.values():
                sensor.set_value(sensor.value, status=Sensor.Status.INACTIVE)
            return
        scale = 1e-9 if timex.status & adjtimex.STA_NANO else 1e-6
        timestamp = timex.time.tv_sec + timex.time.tv_usec * scale
        if "state" in self.sensor_map:
            try:
                clock_state = ClockState(state)
            except ValueError:
                clock_state = ClockState.ERROR
            status = Sensor.Status.NOMINAL if clock_state is ClockState.OK else Sensor.Status.ERROR
            self.sensor_map["state"].set_value(clock_state, status=status, timestamp=timestamp)
        if "maxerror" in self.sensor_map:
            self.sensor_map["maxerror"].set_value(timex.maxerror * 1e-6, timestamp=timestamp)
        if "esterror" in self.sensor_map:
            self.sensor_map["esterror"].set_value(timex.esterror * 1e-6, timestamp=timestamp)
