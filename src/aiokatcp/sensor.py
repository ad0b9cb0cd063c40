"""Sensors, readings, sensor sets and aggregate sensors.

Pure: no asyncio. This module owns :class:`Sensor` (a typed value with a
status and timestamp that tells its observers about every update),
:class:`Reading`, :class:`SensorSet` and the aggregate sensors.
:class:`SensorSampler` is defined next to the strategy engine in
:mod:`._sampling` and re-exported here (its public home in aiokatcp 2.x).

Hot path: ``set_value`` builds one :class:`Reading` and calls each observer
directly (observer lists are immutable tuples, replaced on attach/detach, so
notification needs no copy); an ``auto`` sampler forwards straight to its
observer.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import inspect
import numbers
import time
import types
import weakref
from typing import (
    Any,
    Callable,
    Dict,
    Generic,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    List,
    Mapping,
    Optional,
    Protocol,
    Tuple,
    Type,
    TypeVar,
    Union,
    ValuesView,
    cast,
    overload,
)

from typing_extensions import TypeAlias

from ._sampler import SensorSampler
from ._sampling import Strategy
from ._typeinfo import encode, get_type
from ._values import Timestamp

__all__ = [
    "AggregateSensor",
    "ClassicObserver",
    "DeltaObserver",
    "Observer",
    "Reading",
    "Sensor",
    "SensorSampler",
    "SensorSet",
    "SimpleAggregateSensor",
]

_T = TypeVar("_T")
_U = TypeVar("_U")


class _Status(enum.IntEnum):
    UNKNOWN = 0
    NOMINAL = 1
    WARN = 2
    ERROR = 3
    FAILURE = 4
    UNREACHABLE = 5
    INACTIVE = 6

    def valid_value(self) -> bool:
        """Whether a reading with this status carries a meaningful value."""
        return self in _VALID_STATUSES


# Sensor.Status is the public name (and what reprs and pickles should say).
_Status.__name__ = "Status"
_Status.__qualname__ = "Sensor.Status"
# SensorSampler lives in ._sampling; its public (2.x) path is this module.
SensorSampler.__module__ = __name__
Strategy.__module__ = __name__
Strategy.__qualname__ = "SensorSampler.Strategy"
_VALID_STATUSES = frozenset({_Status.NOMINAL, _Status.WARN, _Status.ERROR})


@dataclasses.dataclass
class Reading(Generic[_T]):
    """One sensor reading: when it was taken, its status and its value.

    A dataclass, as in aiokatcp 2.x (so :func:`dataclasses.replace` and
    :func:`dataclasses.fields` work); readings are immutable by convention and
    equality compares all three fields.
    """

    __slots__ = ("status", "timestamp", "value")

    timestamp: float
    status: _Status
    value: _T


_AUTO = Strategy.AUTO
_NOMINAL = _Status.NOMINAL  # (an Enum member lookup is a metaclass call: once per update adds up)


def _always_nominal(value: Any) -> _Status:
    return _NOMINAL


_FunctionType = types.FunctionType


#: The answer of :func:`_is_delta_observer` for callable types whose instances cannot
#: carry their own signature (no ``__dict__``): a server's samplers' callbacks.
_delta_by_type: Dict[type, bool] = {}


def _is_delta_observer(observer: Callable[..., None]) -> bool:
    """Whether `observer` takes an ``old_reading`` parameter (a delta observer)."""
    kind = type(observer)
    known = _delta_by_type.get(kind)
    if known is not None:
        return known
    result = _inspect_delta_observer(observer)
    if (
        not kind.__dictoffset__
        and kind is not _FunctionType
        and type(getattr(kind, "__call__", None)) is _FunctionType  # noqa: B004
        and not hasattr(kind, "__signature__")
        and not hasattr(kind, "__wrapped__")
        and len(_delta_by_type) < 1000
    ):
        _delta_by_type[kind] = result
    return result


def _inspect_delta_observer(observer: Callable[..., None]) -> bool:
    # Fast path for plain functions, bound methods and objects whose class defines
    # __call__ in Python (inspect.signature costs ~30 us, which matters when a client
    # subscribes to thousands of sensors at once). A method's code includes ``self``,
    # which is never ``old_reading``.
    kind = type(observer)
    if kind is _FunctionType:
        func: Any = observer
    else:
        func = getattr(observer, "__func__", None)
        if func is None:
            call = getattr(kind, "__call__", None)  # noqa: B004 (the Python-level method)
            plain_call = (
                type(call) is _FunctionType
                and not hasattr(observer, "__signature__")
                and not hasattr(observer, "__wrapped__")
            )
            func = call if plain_call else observer
    code = getattr(func, "__code__", None)
    if code is not None and not hasattr(func, "__wrapped__"):
        return "old_reading" in code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    try:
        params = inspect.signature(observer).parameters
    except (TypeError, ValueError):
        return False
    return "old_reading" in params


_Range = Tuple[Any, Any]


class ClassicObserver(Protocol[_T]):
    """Type of an observer called as ``observer(sensor, reading)`` (as in 2.x)."""

    def __call__(self, __sensor: Sensor[_T], __reading: Reading[_T]) -> None: ...


class DeltaObserver(Protocol[_T]):
    """Type of an observer that also receives the previous reading (as in 2.x)."""

    def __call__(
        self, __sensor: Sensor[_T], __reading: Reading[_T], *, old_reading: Reading[_T]
    ) -> None: ...


#: Either kind of observer accepted by :meth:`Sensor.attach` (as in 2.x).
Observer = Union[ClassicObserver[_T], DeltaObserver[_T]]


class Sensor(Generic[_T]):
    """A typed value with a status and a timestamp, which reports every update.

    Parameters
    ----------
    sensor_type
        Python type of the value; any registered type (an enum makes a
        ``discrete`` sensor).
    name
        Sensor name (KATCP 5.1 allows ``a-z A-Z 0-9 . - _``).
    description, units
        Human-readable metadata for ``#sensor-list``.
    default
        Initial value; the type's registered default if omitted.
    initial_status
        Status of the initial reading.
    status_func
        Computes the status of a value set without an explicit status.
        Defaults to "always nominal", or to the range rule when ranges are
        given.
    auto_strategy, auto_strategy_parameters
        What a client's ``auto`` strategy means for this sensor (default:
        report every update).
    nominal_range, warn_range
        ``(low, high)`` limits for integer and float sensors, advertised in
        ``#sensor-list``. Unless `status_func` is given, a value inside the
        nominal range is nominal, one inside the warn range is warn and
        anything else is error (or warn, if there is no warn range).

    Raises
    ------
    TypeError
        if the type is not registered, the default has the wrong type, or
        ranges are given for a non-numeric sensor
    ValueError
        if a range has low > high, the warn range does not contain the
        nominal range, or a warn range is given without a nominal range
    """

    Status: TypeAlias = _Status

    def __init__(
        self,
        sensor_type: Type[_T],
        name: str,
        description: str = "",
        units: str = "",
        default: Optional[_T] = None,
        initial_status: _Status = _Status.UNKNOWN,
        *,
        status_func: Optional[Callable[[_T], _Status]] = None,
        auto_strategy: Optional[Strategy] = None,
        auto_strategy_parameters: Iterable[Any] = (),
        nominal_range: Optional[_Range] = None,
        warn_range: Optional[_Range] = None,
    ) -> None:
        type_info = get_type(cast(Any, sensor_type))
        self.stype = sensor_type
        self.type_name = type_info.name
        self._core_type: Any = type_info.type_
        self.name = name
        self.description = description
        self.units = units
        self.auto_strategy = _AUTO if auto_strategy is None else auto_strategy
        self.auto_strategy_parameters = tuple(auto_strategy_parameters)
        self._nominal_range: Optional[_Range] = None
        self._warn_range: Optional[_Range] = None
        if nominal_range is not None or warn_range is not None:
            self._set_ranges(nominal_range, warn_range)
        if status_func is None:
            status_func = self._range_status if self._nominal_range else _always_nominal
        self.status_func: Callable[[_T], _Status] = status_func
        self._observers: Tuple[Callable[[Sensor[_T], Reading[_T]], None], ...] = ()
        self._delta_observers: Tuple[Callable[..., None], ...] = ()
        if default is None:
            value: _T = type_info.default(sensor_type)
        else:
            value = self._coerce(default)
        if type(initial_status) is not _Status:
            initial_status = _Status(initial_status)
        self._reading: Reading[_T] = Reading(time.time(), initial_status, value)

    # -- ranges -----------------------------------------------------------------------------

    def _set_ranges(self, nominal: Optional[_Range], warn: Optional[_Range]) -> None:
        if self.type_name not in ("integer", "float"):
            raise TypeError(
                f"ranges are only allowed on integer and float sensors, not {self.type_name}"
            )
        if nominal is None:
            raise ValueError("warn_range requires nominal_range")
        nominal = self._check_range(nominal, "nominal_range")
        if warn is not None:
            warn = self._check_range(warn, "warn_range")
            if not (warn[0] <= nominal[0] and nominal[1] <= warn[1]):
                raise ValueError(f"warn_range {warn!r} must contain nominal_range {nominal!r}")
        self._nominal_range = nominal
        self._warn_range = warn

    def _check_range(self, limits: _Range, what: str) -> _Range:
        try:
            raw_low, raw_high = limits
        except (TypeError, ValueError):
            raise TypeError(f"{what} must be a (low, high) pair") from None
        low: Any = self._coerce(raw_low)
        high: Any = self._coerce(raw_high)
        if not low <= high:
            raise ValueError(f"{what}: low ({low!r}) must not be greater than high ({high!r})")
        return (low, high)

    @property
    def nominal_range(self) -> Optional[_Range]:
        """The ``(low, high)`` nominal limits, or ``None``."""
        return self._nominal_range

    @property
    def warn_range(self) -> Optional[_Range]:
        """The ``(low, high)`` warn limits, or ``None``."""
        return self._warn_range

    def _range_status(self, value: Any) -> _Status:
        nominal = self._nominal_range
        assert nominal is not None
        if nominal[0] <= value <= nominal[1]:
            return _Status.NOMINAL
        warn = self._warn_range
        if warn is None:
            return _Status.WARN
        if warn[0] <= value <= warn[1]:
            return _Status.WARN
        return _Status.ERROR

    # -- values -----------------------------------------------------------------------------

    def _coerce(self, value: Any) -> _T:
        """Convert `value` to the sensor type, or raise :exc:`TypeError`."""
        stype: Any = self.stype
        if isinstance(value, stype):
            return cast(_T, value)
        core = self._core_type
        if not issubclass(stype, enum.Enum) and isinstance(value, core):
            return cast(_T, stype(value))
        if issubclass(stype, Timestamp) and isinstance(value, numbers.Real):
            return cast(_T, stype(value))
        raise TypeError(
            f"value {value!r} of type {type(value).__name__} is not valid for "
            f"sensor {self.name!r} of type {getattr(stype, '__name__', stype)}"
        )

    def set_value(
        self, value: Any, status: Optional[_Status] = None, timestamp: Optional[float] = None
    ) -> None:
        """Set a new reading and tell every observer (even if nothing changed).

        Parameters
        ----------
        value
            New value, converted to the sensor type if it is a compatible
            number (e.g. an int for a float sensor).
        status
            Status of the reading; computed with :attr:`status_func` if omitted.
        timestamp
            When the value was measured (Unix time); now if omitted.

        Raises
        ------
        TypeError
            if `value` cannot be used for this sensor's type
        """
        if type(value) is not self.stype:
            value = self._coerce(value)
        if status is None:
            status = self.status_func(value)
        reading = Reading(time.time() if timestamp is None else timestamp, status, value)
        old_reading = self._reading
        self._reading = reading
        for observer in self._observers:
            observer(self, reading)
        if self._delta_observers:
            for delta in self._delta_observers:
                delta(self, reading, old_reading=old_reading)

    def notify(self, reading: Reading[_T], old_reading: Reading[_T]) -> None:
        """Tell every observer about `reading` (classic observers first)."""
        for observer in self._observers:
            observer(self, reading)
        for delta in self._delta_observers:
            delta(self, reading, old_reading=old_reading)

    @property
    def value(self) -> _T:
        """The current value (setting it calls :meth:`set_value`)."""
        return self._reading.value

    @value.setter
    def value(self, value: _T) -> None:
        self.set_value(value)

    @property
    def status(self) -> _Status:
        """The status of the current reading."""
        return self._reading.status

    @property
    def timestamp(self) -> float:
        """The timestamp of the current reading."""
        return self._reading.timestamp

    @property
    def reading(self) -> Reading[_T]:
        """The current reading."""
        return self._reading

    @property
    def params(self) -> List[bytes]:
        """The type parameters for ``#sensor-list``.

        Discrete sensors list their encoded values; numeric sensors with
        ranges give ``nominal-min nominal-max [warn-min warn-max]``.
        """
        stype: Any = self.stype
        if self.type_name == "discrete":
            return [encode(member) for member in stype]
        out: List[bytes] = []
        if self._nominal_range is not None:
            out.extend(encode(limit) for limit in self._nominal_range)
            if self._warn_range is not None:
                out.extend(encode(limit) for limit in self._warn_range)
        return out

    # -- observers --------------------------------------------------------------------------

    def attach(self, observer: Callable[..., None]) -> None:
        """Call `observer` on every update.

        A callable with a parameter named ``old_reading`` is a delta observer,
        called as ``observer(sensor, reading, old_reading=old)``; any other is
        called as ``observer(sensor, reading)``.
        """
        delta = _delta_by_type.get(type(observer))  # (the cache, without a call)
        if delta is None:
            delta = _is_delta_observer(observer)
        if delta:
            self._delta_observers = (*self._delta_observers, observer)
        else:
            self._observers = (*self._observers, observer)

    def detach(self, observer: Callable[..., None]) -> None:
        """Stop calling `observer` (no error if it is not attached)."""
        for attr in ("_observers", "_delta_observers"):
            observers: Tuple[Callable[..., None], ...] = getattr(self, attr)
            for i, current in enumerate(observers):
                if current == observer:
                    setattr(self, attr, observers[:i] + observers[i + 1 :])
                    return

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.type_name}>"


_AddCallback = Callable[[Sensor[Any]], None]
_NO_DEFAULT: Any = object()


class SensorSet(Mapping[str, Sensor[Any]]):
    """The sensors of a device: a mapping by name that can also be used like a set.

    Callbacks registered with :meth:`add_add_callback` and
    :meth:`add_remove_callback` are told about every sensor added or
    removed (replacing a sensor counts as a removal then an addition), which
    is how servers and aggregate sensors follow a changing set.
    """

    def __init__(self) -> None:
        self._sensors: Dict[str, Sensor[Any]] = {}
        self._add_callbacks: List[_AddCallback] = []
        self._remove_callbacks: List[_AddCallback] = []

    def _added(self, elem: Sensor[Any]) -> None:
        for callback in list(self._add_callbacks):
            callback(elem)

    def _removed(self, elem: Sensor[Any]) -> None:
        for callback in list(self._remove_callbacks):
            callback(elem)

    def add(self, elem: Sensor[Any]) -> None:
        """Add a sensor, replacing any other sensor with the same name."""
        current = self._sensors.get(elem.name)
        if current is elem:
            return
        if current is not None:
            del self._sensors[elem.name]
            self._removed(current)
        self._sensors[elem.name] = elem
        self._added(elem)

    def remove(self, elem: Sensor[Any]) -> None:
        """Remove this exact sensor; :exc:`KeyError` if it is not in the set."""
        if self._sensors.get(elem.name) is not elem:
            raise KeyError(elem.name)
        del self._sensors[elem.name]
        self._removed(elem)

    def discard(self, elem: Sensor[Any]) -> None:
        """Remove this exact sensor if it is in the set."""
        if self._sensors.get(elem.name) is elem:
            del self._sensors[elem.name]
            self._removed(elem)

    def clear(self) -> None:
        """Remove every sensor (remove callbacks fire for each)."""
        while self._sensors:
            self.popitem()

    def popitem(self) -> Tuple[str, Sensor[Any]]:
        """Remove and return some ``(name, sensor)``; :exc:`KeyError` if empty."""
        name, sensor = self._sensors.popitem()
        self._removed(sensor)
        return name, sensor

    @overload
    def pop(self, key: str) -> Sensor[Any]: ...

    @overload
    def pop(self, key: str, default: _U) -> Union[Sensor[Any], _U]: ...

    def pop(self, key: str, default: Any = _NO_DEFAULT) -> Any:
        """Remove the sensor called `key` and return it (or `default`)."""
        try:
            sensor = self._sensors.pop(key)
        except KeyError:
            if default is _NO_DEFAULT:
                raise
            return default
        self._removed(sensor)
        return sensor

    def __delitem__(self, key: str) -> None:
        sensor = self._sensors.pop(key)
        self._removed(sensor)

    def __getitem__(self, name: str) -> Sensor[Any]:
        return self._sensors[name]

    @overload
    def get(self, name: str) -> Optional[Sensor[Any]]: ...

    @overload
    def get(self, name: str, default: Union[Sensor[Any], _U]) -> Union[Sensor[Any], _U]: ...

    def get(self, name: str, default: Any = None) -> Any:
        """The sensor called `name`, or `default`."""
        return self._sensors.get(name, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, Sensor):
            return self._sensors.get(key.name) is key
        return key in self._sensors

    def __len__(self) -> int:
        return len(self._sensors)

    def __bool__(self) -> bool:
        return bool(self._sensors)

    def __iter__(self) -> Iterator[str]:
        return iter(self._sensors)

    def keys(self) -> KeysView[str]:
        """Sensor names."""
        return self._sensors.keys()

    def values(self) -> ValuesView[Sensor[Any]]:
        """Sensors."""
        return self._sensors.values()

    def items(self) -> ItemsView[str, Sensor[Any]]:
        """``(name, sensor)`` pairs."""
        return self._sensors.items()

    def copy(self) -> Dict[str, Sensor[Any]]:
        """A plain dict with the same contents."""
        return dict(self._sensors)

    __hash__ = None  # type: ignore[assignment]

    def add_add_callback(self, callback: _AddCallback) -> None:
        """Call ``callback(sensor)`` after each sensor is added."""
        self._add_callbacks.append(callback)

    def remove_add_callback(self, callback: _AddCallback) -> None:
        """Undo :meth:`add_add_callback` (:exc:`ValueError` if not registered)."""
        self._add_callbacks.remove(callback)

    def add_remove_callback(self, callback: _AddCallback) -> None:
        """Call ``callback(sensor)`` after each sensor is removed."""
        self._remove_callbacks.append(callback)

    def remove_remove_callback(self, callback: _AddCallback) -> None:
        """Undo :meth:`add_remove_callback` (:exc:`ValueError` if not registered)."""
        self._remove_callbacks.remove(callback)

    def __repr__(self) -> str:
        return f"SensorSet({sorted(self._sensors)!r})"


def _detach_aggregate(
    target_ref: weakref.ReferenceType[SensorSet],
    on_add: _AddCallback,
    on_remove: _AddCallback,
    observer: Callable[..., None],
    attached: weakref.WeakSet[Sensor[Any]],
) -> None:
    """Finaliser of an :class:`AggregateSensor`: unhook it from its target and sensors."""
    target = target_ref()
    if target is not None:
        if on_add in target._add_callbacks:
            target.remove_add_callback(on_add)
        if on_remove in target._remove_callbacks:
            target.remove_remove_callback(on_remove)
    for sensor in list(attached):
        sensor.detach(observer)


class AggregateSensor(Sensor[_T], metaclass=abc.ABCMeta):
    """A sensor whose reading is computed from the sensors in a :class:`SensorSet`.

    It follows `target` as sensors are added and removed, and is told about
    every update of each sensor accepted by :meth:`filter_aggregate`. All
    registrations hold the aggregate weakly, so it (and with it the target)
    can be garbage-collected like any other object.

    Subclasses must set up their own state *before* calling this constructor,
    because it calls :meth:`update_aggregate` (with ``(None, None, None)``).

    Parameters
    ----------
    target
        The sensors to aggregate (the aggregate itself may be among them).
    sensor_type, name, description, units, auto_strategy, auto_strategy_parameters
        As for :class:`Sensor`.
    """

    def __init__(
        self,
        target: SensorSet,
        sensor_type: Type[_T],
        name: str,
        description: str = "",
        units: str = "",
        *,
        auto_strategy: Optional[Strategy] = None,
        auto_strategy_parameters: Iterable[Any] = (),
    ) -> None:
        super().__init__(
            sensor_type,
            name,
            description,
            units,
            auto_strategy=auto_strategy,
            auto_strategy_parameters=auto_strategy_parameters,
        )
        self.target = target
        ref = weakref.ref(self)
        attached: weakref.WeakSet[Sensor[Any]] = weakref.WeakSet()

        def observer(
            sensor: Sensor[Any], reading: Reading[Any], *, old_reading: Reading[Any]
        ) -> None:
            aggregate = ref()
            if aggregate is None:
                sensor.detach(observer)
            else:
                aggregate._aggregate_update(sensor, reading, old_reading)

        def on_add(sensor: Sensor[Any]) -> None:
            aggregate = ref()
            if aggregate is not None:
                aggregate._target_added(sensor)

        def on_remove(sensor: Sensor[Any]) -> None:
            aggregate = ref()
            if aggregate is not None:
                aggregate._target_removed(sensor)

        self._aggregate_observer = observer
        self._attached = attached
        target.add_add_callback(on_add)
        target.add_remove_callback(on_remove)
        weakref.finalize(
            self, _detach_aggregate, weakref.ref(target), on_add, on_remove, observer, attached
        )
        for sensor in list(target.values()):
            if self.filter_aggregate(sensor):
                sensor.attach(observer)
                attached.add(sensor)
        self._aggregate_update(None, None, None)

    def _aggregate_update(
        self,
        sensor: Optional[Sensor[Any]],
        reading: Optional[Reading[Any]],
        old_reading: Optional[Reading[Any]],
    ) -> None:
        new = self.update_aggregate(sensor, reading, old_reading)
        if new is not None:
            self.set_value(new.value, new.status, new.timestamp)

    def _target_added(self, sensor: Sensor[Any]) -> None:
        if sensor not in self._attached and self.filter_aggregate(sensor):
            sensor.attach(self._aggregate_observer)
            self._attached.add(sensor)
            self._aggregate_update(sensor, sensor.reading, None)

    def _target_removed(self, sensor: Sensor[Any]) -> None:
        if sensor in self._attached:
            sensor.detach(self._aggregate_observer)
            self._attached.discard(sensor)
            self._aggregate_update(sensor, None, sensor.reading)

    @abc.abstractmethod
    def update_aggregate(
        self,
        updated_sensor: Optional[Sensor[Any]],
        reading: Optional[Reading[Any]],
        old_reading: Optional[Reading[Any]],
    ) -> Optional[Reading[_T]]:
        """Compute a new reading after a change in the target.

        Parameters
        ----------
        updated_sensor
            The sensor that changed; ``None`` for the initial call made by
            the constructor.
        reading
            Its new reading, or ``None`` if it was removed from the target.
        old_reading
            Its previous reading, or ``None`` if it was just added.

        Returns
        -------
        The aggregate's new reading, or ``None`` to leave it unchanged.
        """

    def filter_aggregate(self, sensor: Sensor[Any]) -> bool:
        """Whether `sensor` contributes to the aggregate (default: all but itself)."""
        return sensor is not self


class SimpleAggregateSensor(AggregateSensor[_T]):
    """An aggregate maintained incrementally by adding and removing readings.

    Only readings whose status carries a valid value (nominal, warn, error)
    are given to :meth:`aggregate_add` / :meth:`aggregate_remove`. The
    aggregate's timestamp is that of the triggering update for value
    changes, the current time when sensors are added or removed, and never
    goes backwards.
    """

    def update_aggregate(
        self,
        updated_sensor: Optional[Sensor[Any]],
        reading: Optional[Reading[Any]],
        old_reading: Optional[Reading[Any]],
    ) -> Optional[Reading[_T]]:
        """Feed the change to :meth:`aggregate_remove`/:meth:`aggregate_add` and recompute."""
        if updated_sensor is None:
            for sensor in list(self._attached):
                if sensor.status.valid_value():
                    self.aggregate_add(sensor, sensor.reading)
            timestamp = time.time()
        else:
            changed = False
            if old_reading is not None and old_reading.status.valid_value():
                changed = self.aggregate_remove(updated_sensor, old_reading)
            if reading is not None and reading.status.valid_value():
                changed = self.aggregate_add(updated_sensor, reading) or changed
            if not changed:
                return None
            if reading is not None and old_reading is not None:
                timestamp = reading.timestamp
            else:
                timestamp = time.time()
        status, value = self.aggregate_compute()
        return Reading(max(timestamp, self.timestamp), status, value)

    @abc.abstractmethod
    def aggregate_add(self, sensor: Sensor[Any], reading: Reading[Any]) -> bool:
        """Account for `reading` of `sensor`; return whether the aggregate may have changed."""

    @abc.abstractmethod
    def aggregate_remove(self, sensor: Sensor[Any], reading: Reading[Any]) -> bool:
        """Stop accounting for `reading` of `sensor`; return whether the aggregate changed."""

    @abc.abstractmethod
    def aggregate_compute(self) -> Tuple[_Status, _T]:
        """Return the aggregate's status and value from the accumulated state."""
