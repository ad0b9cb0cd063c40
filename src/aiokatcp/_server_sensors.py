"""Pure helpers of the sensor requests: selecting sensors, validating a sampling plan.

No asyncio: these take the server's :class:`~aiokatcp.sensor.SensorSet`
and the request's arguments and return plain data (or raise
:exc:`~aiokatcp.exceptions.FailReply` with the text 2.x clients match on).
The requests themselves are in :mod:`aiokatcp.server`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ._pattern import InvalidPattern, compile_sensor_pattern
from ._sampler import SensorSampler
from ._sampling import DEFAULT_MIN_INTERVAL, StrategySpec, resolve_strategy
from .exceptions import FailReply
from .sensor import Sensor, SensorSet

__all__ = ["Resolved", "resolve_sampling", "select_sensors"]

#: A validated strategy for one sensor: ``(spec, is_auto)``; no spec means ``none``.
Resolved = Tuple[Optional[StrategySpec], bool]
_UNSET = object()


def select_sensors(sensors: SensorSet, name: Optional[str]) -> List[Sensor[Any]]:
    """Sensors named by a ``?sensor-list``/``?sensor-value`` argument, sorted by name.

    Raises
    ------
    FailReply
        for an unknown exact name or an invalid ``/regex/``
    """
    if name is None:
        return [sensors[key] for key in sorted(sensors.keys())]
    if len(name) >= 2 and name.startswith("/") and name.endswith("/"):
        try:
            match = compile_sensor_pattern(name[1:-1])
            return [sensors[key] for key in sorted(sensors.keys()) if match(key)]
        except InvalidPattern as exc:
            raise FailReply(str(exc)) from None  # re's own text, as in aiokatcp 2.x
        except ValueError as exc:
            raise FailReply(f"invalid regular expression {name!r}: {exc}") from None
    sensor = sensors.get(name)
    if sensor is None:
        raise FailReply(f"Unknown sensor {name!r}")
    return [sensor]


def resolve_sampling(
    sensors: SensorSet,
    names: List[str],
    strategy: SensorSampler.Strategy,
    args: Tuple[bytes, ...],
    min_interval: float = DEFAULT_MIN_INTERVAL,
) -> Tuple[List[Sensor[Any]], List[Resolved]]:
    """Look up every sensor and validate the strategy for each (no side effects).

    Returns the sensors and, for each, its ``(spec or None, is_auto)``.
    This runs without yielding (validation must see one consistent state)
    and is kept lean for bulk requests: no objects are made per sensor,
    so it neither takes long nor provokes a garbage collection.

    Raises
    ------
    FailReply
        for a duplicated name (checked first), the first unknown sensor,
        or a strategy that does not suit a sensor (with the plain reason)
    """
    get_sensor = sensors.get
    found: List[Any] = [get_sensor(sensor_name) for sensor_name in names]
    if len(set(names)) != len(names):
        raise FailReply("Duplicate sensor name")
    check_names = None in found
    resolved_list: List[Resolved] = []
    append = resolved_list.append
    cache: Dict[Any, Resolved] = {}
    last_stype: Any = _UNSET
    last_auto: Any = _UNSET
    last_params: Any = _UNSET
    resolved: Any = None
    for i, sensor in enumerate(found):
        if check_names and sensor is None:  # report the first unknown name
            raise FailReply(f"Unknown sensor {names[i]!r}")
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
                    resolved = resolve_strategy(sensor, strategy, args, min_interval=min_interval)
                except (ValueError, TypeError) as exc:
                    raise FailReply(str(exc)) from None
                if key is not None:
                    cache[key] = resolved
        append(resolved)
    return found, resolved_list
