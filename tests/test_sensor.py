"""Sensors, readings, sensor sets, aggregates and the loop-driven SensorSampler."""

from __future__ import annotations

import enum
import gc
import heapq
import inspect
import ipaddress
import itertools
import weakref
from typing import Any, Callable, List, Optional, Tuple

import pytest

from aiokatcp import Address, Timestamp, encode
from aiokatcp.sensor import (
    AggregateSensor,
    Reading,
    Sensor,
    SensorSampler,
    SensorSet,
    SimpleAggregateSensor,
)

Status = Sensor.Status
Strategy = SensorSampler.Strategy


class Colour(enum.Enum):
    RED_ISH = 1
    GREEN = 2


class MyInt(int):
    pass


# -- Status and Reading ----------------------------------------------------------------------


def test_status_values() -> None:
    assert [s.name for s in Status] == [
        "UNKNOWN",
        "NOMINAL",
        "WARN",
        "ERROR",
        "FAILURE",
        "UNREACHABLE",
        "INACTIVE",
    ]
    assert [int(s) for s in Status] == list(range(7))
    assert [s for s in Status if s.valid_value()] == [Status.NOMINAL, Status.WARN, Status.ERROR]
    assert encode(Status.UNREACHABLE) == b"unreachable"
    assert repr(Status.WARN) == "<Status.WARN: 2>"


def test_reading() -> None:
    reading = Reading(1.5, Status.NOMINAL, 3)
    assert (reading.timestamp, reading.status, reading.value) == (1.5, Status.NOMINAL, 3)
    assert reading == Reading(1.5, Status.NOMINAL, 3)
    assert reading != Reading(1.5, Status.WARN, 3)
    assert reading != Reading(1.0, Status.NOMINAL, 3)
    assert reading != Reading(1.5, Status.NOMINAL, 4)
    assert reading != (1.5, Status.NOMINAL, 3)
    assert repr(reading) == "Reading(timestamp=1.5, status=<Status.NOMINAL: 1>, value=3)"
    with pytest.raises(TypeError):
        hash(reading)
    with pytest.raises(AttributeError):
        reading.other = 1  # type: ignore[attr-defined]


# -- Sensor ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stype", "type_name", "default"),
    [
        (int, "integer", 0),
        (float, "float", 0.0),
        (bool, "boolean", False),
        (str, "string", ""),
        (bytes, "string", b""),
        (Address, "address", Address(ipaddress.IPv4Address("0.0.0.0"))),
        (Timestamp, "timestamp", Timestamp(0.0)),
        (Colour, "discrete", Colour.RED_ISH),
    ],
)
def test_sensor_defaults(stype: Any, type_name: str, default: Any) -> None:
    sensor = Sensor(stype, "s")
    assert sensor.type_name == type_name
    assert sensor.value == default
    assert type(sensor.value) is type(default)
    assert sensor.status == Status.UNKNOWN
    assert sensor.stype is stype
    assert sensor.auto_strategy is Strategy.AUTO
    assert sensor.auto_strategy_parameters == ()


def test_sensor_metadata_and_initial_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: 1234.5)
    sensor = Sensor(int, "cnt", "A counter", "count", 7, Status.NOMINAL)
    assert (sensor.name, sensor.description, sensor.units) == ("cnt", "A counter", "count")
    assert sensor.reading == Reading(1234.5, Status.NOMINAL, 7)
    assert sensor.timestamp == 1234.5
    assert sensor.params == []
    assert repr(sensor) == "<Sensor 'cnt' integer>"


def test_discrete_params() -> None:
    assert Sensor(Colour, "c").params == [b"red-ish", b"green"]


def test_unregistered_type() -> None:
    with pytest.raises(TypeError):
        Sensor(list, "x")


def test_bad_default() -> None:
    with pytest.raises(TypeError, match="not valid for sensor 'x'"):
        Sensor(int, "x", default="3")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stype", "value", "expected"),
    [
        (int, 3, 3),
        (int, True, True),
        (MyInt, 3, MyInt(3)),
        (float, 3, 3.0),
        (float, 2.5, 2.5),
        (float, True, 1.0),
        (Timestamp, 3, Timestamp(3)),
        (Timestamp, 2.5, Timestamp(2.5)),
        (bool, True, True),
        (str, "x", "x"),
        (bytes, b"x", b"x"),
        (Colour, Colour.GREEN, Colour.GREEN),
    ],
)
def test_coercion(stype: Any, value: Any, expected: Any) -> None:
    sensor = Sensor(stype, "s")
    sensor.value = value
    assert sensor.value == expected
    assert type(sensor.value) is type(expected)


@pytest.mark.parametrize(
    ("stype", "value"),
    [
        (int, 2.5),
        (int, "3"),
        (bool, 1),
        (str, b"x"),
        (bytes, "x"),
        (Colour, 1),
        (Address, "1.2.3.4"),
        (float, "1.0"),
    ],
)
def test_coercion_rejected(stype: Any, value: Any) -> None:
    sensor = Sensor(stype, "s")
    before = sensor.reading
    with pytest.raises(TypeError, match="not valid for sensor"):
        sensor.set_value(value)
    assert sensor.reading is before


def test_set_value(monkeypatch: pytest.MonkeyPatch) -> None:
    sensor = Sensor(int, "s")
    monkeypatch.setattr("time.time", lambda: 99.0)
    sensor.set_value(4)
    assert sensor.reading == Reading(99.0, Status.NOMINAL, 4)
    sensor.set_value(5, Status.ERROR, 12.0)
    assert sensor.reading == Reading(12.0, Status.ERROR, 5)


def test_status_func() -> None:
    sensor = Sensor(int, "s", status_func=lambda v: Status.WARN if v > 3 else Status.NOMINAL)
    sensor.value = 4
    assert sensor.status == Status.WARN
    sensor.set_value(5, Status.FAILURE)
    assert sensor.status == Status.FAILURE


def test_observers() -> None:
    sensor = Sensor(int, "s")
    calls: List[Tuple[Any, ...]] = []

    def classic(s: Sensor[int], r: Reading[int]) -> None:
        calls.append(("classic", s, r))

    def delta(s: Sensor[int], r: Reading[int], *, old_reading: Reading[int]) -> None:
        calls.append(("delta", s, r, old_reading))

    sensor.attach(delta)
    sensor.attach(classic)
    first = sensor.reading
    sensor.set_value(1, timestamp=1.0)
    second = sensor.reading
    sensor.set_value(1, timestamp=1.0)  # always notifies, even if unchanged
    assert calls == [
        ("classic", sensor, second),
        ("delta", sensor, second, first),
        ("classic", sensor, sensor.reading),
        ("delta", sensor, sensor.reading, second),
    ]
    calls.clear()
    sensor.detach(classic)
    sensor.detach(delta)
    sensor.detach(delta)  # not attached: ignored
    sensor.value = 2
    assert calls == []


class _CallableClassic:
    def __init__(self, calls: List[Tuple[Any, ...]]) -> None:
        self.calls = calls

    def __call__(self, s: Sensor[int], r: Reading[int]) -> None:
        self.calls.append(("classic-object", r))


class _CallableDelta(_CallableClassic):
    def __call__(  # type: ignore[override]
        self, s: Sensor[int], r: Reading[int], *, old_reading: Reading[int]
    ) -> None:
        self.calls.append(("delta-object", r, old_reading))


class _SignedDelta(_CallableClassic):
    """Says (through ``__signature__``) that it takes ``old_reading``, as inspect reports."""

    def __init__(self, calls: List[Tuple[Any, ...]]) -> None:
        super().__init__(calls)
        self.__signature__ = inspect.signature(_CallableDelta.__call__)

    def __call__(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.calls.append(("signed", *args[1:], *kwargs.values()))


def test_callable_object_observers() -> None:
    """Objects with a Python ``__call__`` are told apart by that method's parameters."""
    sensor = Sensor(int, "s")
    calls: List[Tuple[Any, ...]] = []
    sensor.attach(_CallableClassic(calls))
    sensor.attach(_CallableDelta(calls))
    sensor.attach(_SignedDelta(calls))
    first = sensor.reading
    sensor.value = 1
    assert calls == [
        ("classic-object", sensor.reading),
        ("delta-object", sensor.reading, first),
        ("signed", sensor.reading, first),
    ]


def test_observer_detaching_during_notify() -> None:
    sensor = Sensor(int, "s")
    calls: List[str] = []

    def first(s: Sensor[int], r: Reading[int]) -> None:
        calls.append("first")
        s.detach(second)

    def second(s: Sensor[int], r: Reading[int]) -> None:
        calls.append("second")

    sensor.attach(first)
    sensor.attach(second)
    sensor.value = 1
    sensor.value = 2
    assert calls == ["first", "second", "first"]


def test_notify() -> None:
    sensor = Sensor(int, "s")
    seen: List[Reading[int]] = []
    sensor.attach(lambda s, r: seen.append(r))
    reading = Reading(1.0, Status.WARN, 9)
    sensor.notify(reading, sensor.reading)
    assert seen == [reading]


# -- ranges ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (0, Status.NOMINAL),
        (10, Status.NOMINAL),
        (5, Status.NOMINAL),
        (-1, Status.WARN),
        (-5, Status.WARN),
        (11, Status.WARN),
        (20, Status.WARN),
        (-6, Status.ERROR),
        (21, Status.ERROR),
    ],
)
def test_range_status(value: int, status: Sensor.Status) -> None:
    sensor = Sensor(int, "s", nominal_range=(0, 10), warn_range=(-5, 20))
    sensor.value = value
    assert sensor.status == status


def test_nominal_range_only() -> None:
    sensor = Sensor(float, "s", "d", "V", nominal_range=(0, 5))
    assert sensor.params == [b"0.0", b"5.0"]
    assert sensor.nominal_range == (0.0, 5.0)
    assert sensor.warn_range is None
    assert sensor.status == Status.UNKNOWN  # initial reading keeps initial_status
    sensor.value = 6
    assert sensor.status == Status.WARN
    sensor.value = 5
    assert sensor.status == Status.NOMINAL


def test_range_params_int() -> None:
    sensor = Sensor(int, "s", nominal_range=(0, 10), warn_range=(-5, 20))
    assert sensor.params == [b"0", b"10", b"-5", b"20"]


def test_range_with_status_func_or_status() -> None:
    sensor = Sensor(int, "s", nominal_range=(0, 10), status_func=lambda v: Status.FAILURE)
    sensor.value = 5
    assert sensor.status == Status.FAILURE
    ranged = Sensor(int, "t", nominal_range=(0, 10))
    ranged.set_value(50, Status.NOMINAL)
    assert ranged.status == Status.NOMINAL


@pytest.mark.parametrize(
    ("stype", "kwargs", "exc", "match"),
    [
        (str, {"nominal_range": ("a", "b")}, TypeError, "only allowed on integer and float"),
        (bool, {"nominal_range": (False, True)}, TypeError, "only allowed on integer and float"),
        (Timestamp, {"nominal_range": (0, 1)}, TypeError, "only allowed on integer and float"),
        (Colour, {"nominal_range": (0, 1)}, TypeError, "only allowed on integer and float"),
        (int, {"nominal_range": (5, 1)}, ValueError, "must not be greater than high"),
        (int, {"nominal_range": (0, 5), "warn_range": (1, 10)}, ValueError, "must contain"),
        (int, {"nominal_range": (0, 5), "warn_range": (-1, 4)}, ValueError, "must contain"),
        (int, {"warn_range": (0, 5)}, ValueError, "requires nominal_range"),
        (int, {"nominal_range": (0, 5, 6)}, TypeError, "must be a .low, high. pair"),
        (int, {"nominal_range": 5}, TypeError, "must be a .low, high. pair"),
        (int, {"nominal_range": (0, 2.5)}, TypeError, "not valid for sensor"),
    ],
)
def test_range_validation(stype: Any, kwargs: Any, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        Sensor(stype, "s", **kwargs)


# -- SensorSet -------------------------------------------------------------------------------


class Recorder:
    def __init__(self, sensors: SensorSet) -> None:
        self.events: List[Tuple[str, Sensor[Any]]] = []
        sensors.add_add_callback(self.added)
        sensors.add_remove_callback(self.removed)

    def added(self, sensor: Sensor[Any]) -> None:
        self.events.append(("add", sensor))

    def removed(self, sensor: Sensor[Any]) -> None:
        self.events.append(("remove", sensor))


def test_sensor_set_mapping() -> None:
    sensors = SensorSet()
    assert not sensors
    a, b = Sensor(int, "a"), Sensor(int, "b")
    sensors.add(a)
    sensors.add(b)
    assert sensors
    assert len(sensors) == 2
    assert sensors["a"] is a
    assert sensors.get("b") is b
    assert sensors.get("c") is None
    assert sensors.get("c", 1) == 1
    assert "a" in sensors and a in sensors
    assert Sensor(int, "a") not in sensors
    assert "c" not in sensors and 3 not in sensors
    assert sorted(sensors) == ["a", "b"]
    assert sorted(sensors.keys()) == ["a", "b"]
    assert set(sensors.values()) == {a, b}
    assert dict(sensors.items()) == {"a": a, "b": b}
    copy = sensors.copy()
    assert copy == {"a": a, "b": b} and type(copy) is dict
    with pytest.raises(KeyError):
        sensors["c"]
    with pytest.raises(TypeError):
        hash(sensors)


def test_sensor_set_add_remove_callbacks() -> None:
    sensors = SensorSet()
    rec = Recorder(sensors)
    a, a2, b = Sensor(int, "a"), Sensor(int, "a"), Sensor(int, "b")
    sensors.add(a)
    sensors.add(a)  # already there: no callbacks
    sensors.add(a2)  # replaces a
    sensors.add(b)
    assert rec.events == [("add", a), ("remove", a), ("add", a2), ("add", b)]
    rec.events.clear()
    with pytest.raises(KeyError):
        sensors.remove(a)
    sensors.discard(a)
    assert rec.events == []
    sensors.remove(a2)
    sensors.discard(b)
    assert rec.events == [("remove", a2), ("remove", b)]
    assert not sensors


def test_sensor_set_pop_clear() -> None:
    sensors = SensorSet()
    rec = Recorder(sensors)
    a, b, c, d = (Sensor(int, name) for name in "abcd")
    for sensor in (a, b, c, d):
        sensors.add(sensor)
    rec.events.clear()
    assert sensors.pop("a") is a
    assert sensors.pop("a", None) is None
    with pytest.raises(KeyError):
        sensors.pop("a")
    del sensors["b"]
    with pytest.raises(KeyError):
        del sensors["b"]
    name, sensor = sensors.popitem()
    assert sensors[{"c": "d", "d": "c"}[name]] is not sensor
    assert rec.events == [("remove", a), ("remove", b), ("remove", sensor)]
    sensors.add(a)
    rec.events.clear()
    sensors.clear()
    assert not sensors
    assert {s for _, s in rec.events} == {a, c, d} - {sensor}
    with pytest.raises(KeyError):
        sensors.popitem()


def test_sensor_set_remove_callback_registration() -> None:
    sensors = SensorSet()
    rec = Recorder(sensors)
    sensors.remove_add_callback(rec.added)
    sensors.remove_remove_callback(rec.removed)
    sensors.add(Sensor(int, "a"))
    sensors.clear()
    assert rec.events == []
    with pytest.raises(ValueError):
        sensors.remove_add_callback(rec.added)


# -- aggregates ------------------------------------------------------------------------------


class Total(SimpleAggregateSensor[int]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.total = 0
        self.calls: List[Tuple[str, str, int]] = []
        super().__init__(*args, **kwargs)

    def aggregate_add(self, sensor: Sensor[Any], reading: Reading[Any]) -> bool:
        self.calls.append(("add", sensor.name, reading.value))
        self.total += reading.value
        return True

    def aggregate_remove(self, sensor: Sensor[Any], reading: Reading[Any]) -> bool:
        self.calls.append(("remove", sensor.name, reading.value))
        self.total -= reading.value
        return True

    def aggregate_compute(self) -> Tuple[Sensor.Status, int]:
        return (Status.NOMINAL, self.total)

    def filter_aggregate(self, sensor: Sensor[Any]) -> bool:
        return sensor is not self and sensor.stype is int


def test_simple_aggregate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: 100.0)
    sensors = SensorSet()
    a = Sensor(int, "a", default=3, initial_status=Status.NOMINAL)
    b = Sensor(int, "b", default=4)  # unknown status: not counted
    sensors.add(a)
    sensors.add(b)
    sensors.add(Sensor(str, "text"))
    total = Total(sensors, int, "total", "sum", "count")
    sensors.add(total)
    assert total.reading == Reading(100.0, Status.NOMINAL, 3)
    assert total.calls == [("add", "a", 3)]
    b.set_value(5, timestamp=150.0)
    assert total.reading == Reading(150.0, Status.NOMINAL, 8)
    a.set_value(1, Status.FAILURE, 160.0)
    assert total.value == 5
    a.set_value(10, timestamp=120.0)  # timestamps never go backwards
    assert total.reading == Reading(160.0, Status.NOMINAL, 15)
    c = Sensor(int, "c")
    c.set_value(100, timestamp=50.0)
    monkeypatch.setattr("time.time", lambda: 200.0)
    sensors.add(c)
    assert total.reading == Reading(200.0, Status.NOMINAL, 115)
    sensors.remove(a)
    assert total.value == 105
    a.value = 1000  # no longer followed
    assert total.value == 105


def test_aggregate_sees_replacement() -> None:
    sensors = SensorSet()
    old = Sensor(int, "x", default=1, initial_status=Status.NOMINAL)
    sensors.add(old)
    total = Total(sensors, int, "total")
    new = Sensor(int, "x", default=10, initial_status=Status.NOMINAL)
    sensors.add(new)
    assert total.value == 10
    old.value = 5
    assert total.value == 10


class Latest(AggregateSensor[str]):
    def update_aggregate(
        self,
        updated_sensor: Optional[Sensor[Any]],
        reading: Optional[Reading[Any]],
        old_reading: Optional[Reading[Any]],
    ) -> Optional[Reading[str]]:
        if updated_sensor is None:
            return Reading(1.0, Status.NOMINAL, "start")
        if reading is None:
            return Reading(2.0, Status.WARN, f"removed {updated_sensor.name}")
        if old_reading is None:
            return Reading(3.0, Status.NOMINAL, f"added {updated_sensor.name}")
        if reading.value == 0:
            return None
        return Reading(reading.timestamp, Status.NOMINAL, f"{updated_sensor.name}={reading.value}")


def test_aggregate_sensor_protocol() -> None:
    sensors = SensorSet()
    a = Sensor(int, "a")
    sensors.add(a)
    latest = Latest(sensors, str, "latest", auto_strategy=Strategy.EVENT)
    assert latest.target is sensors
    assert latest.auto_strategy is Strategy.EVENT
    assert latest.reading == Reading(1.0, Status.NOMINAL, "start")
    sensors.add(latest)  # filtered out (itself)
    assert latest.value == "start"
    a.set_value(5, timestamp=4.0)
    assert latest.reading == Reading(4.0, Status.NOMINAL, "a=5")
    a.set_value(0, timestamp=5.0)
    assert latest.value == "a=5"
    b = Sensor(int, "b")
    sensors.add(b)
    assert latest.value == "added b"
    sensors.remove(b)
    assert latest.reading == Reading(2.0, Status.WARN, "removed b")


def test_aggregate_is_abstract() -> None:
    with pytest.raises(TypeError):
        AggregateSensor(SensorSet(), int, "x")  # type: ignore[abstract]


def test_aggregate_and_target_collected() -> None:
    sensors = SensorSet()
    a = Sensor(int, "a", default=1, initial_status=Status.NOMINAL)
    sensors.add(a)
    total = Total(sensors, int, "total")
    sensors.add(total)
    total_ref = weakref.ref(total)
    sensors_ref = weakref.ref(sensors)
    del total, sensors
    gc.collect()
    assert total_ref() is None
    assert sensors_ref() is None
    assert a._observers == () and a._delta_observers == ()  # unhooked by the finaliser
    a.value = 2  # nothing left to call


def test_aggregate_collected_while_target_lives() -> None:
    sensors = SensorSet()
    a = Sensor(int, "a")
    sensors.add(a)
    total = Total(sensors, int, "total")
    total_ref = weakref.ref(total)
    del total  # no reference cycle: freed at once
    assert total_ref() is None
    assert sensors._add_callbacks == [] and sensors._remove_callbacks == []
    sensors.add(Sensor(int, "b"))
    a.value = 3


# -- SensorSampler ---------------------------------------------------------------------------


class FakeHandle:
    def __init__(self, loop: FakeLoop, when: float, callback: Callable[..., Any], args: Any):
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """Just enough loop for a sampler: a settable clock and call_at."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: List[Tuple[float, int, FakeHandle]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> FakeHandle:
        handle = FakeHandle(self, when, callback, args)
        heapq.heappush(self._timers, (when, next(self._seq), handle))
        return handle

    @property
    def pending(self) -> List[float]:
        return sorted(h.when for _, _, h in self._timers if not h.cancelled)

    def advance(self, t: float) -> None:
        while self._timers and self._timers[0][0] <= t:
            when, _, handle = heapq.heappop(self._timers)
            if not handle.cancelled:
                self.now = when
                handle.callback(*handle.args)
        self.now = t


class Observed:
    def __init__(self, loop: FakeLoop) -> None:
        self.loop = loop
        self.seen: List[Tuple[float, Any]] = []

    def __call__(self, sensor: Sensor[Any], reading: Reading[Any]) -> None:
        self.seen.append((self.loop.now, reading.value))


@pytest.fixture
def loop() -> FakeLoop:
    return FakeLoop()


def test_sampler_event(loop: FakeLoop) -> None:
    sensor = Sensor(int, "s", default=1, initial_status=Status.NOMINAL)
    obs = Observed(loop)
    sampler = SensorSampler.factory(sensor, obs, loop, Strategy.EVENT)
    assert sampler is not None
    assert sampler.parameters() == (Strategy.EVENT,)
    assert sampler.observer is obs
    assert obs.seen == [(0.0, 1)]
    loop.advance(1.0)
    sensor.value = 1
    sensor.value = 2
    assert obs.seen == [(0.0, 1), (1.0, 2)]
    assert loop.pending == []
    sampler.close()
    assert sampler.sensor is None and sampler.closed
    sensor.value = 3
    assert obs.seen[-1] == (1.0, 2)
    sampler.close()  # idempotent


def test_sampler_period(loop: FakeLoop) -> None:
    sensor = Sensor(int, "s", default=1)
    obs = Observed(loop)
    sampler = SensorSampler.factory(sensor, obs, loop, Strategy.PERIOD, b"2")
    assert sampler is not None
    assert sampler.parameters() == (Strategy.PERIOD, 2.0)
    assert sampler.wire_parameters() == [b"period", b"2.0"]
    assert (sampler.shortest, sampler.longest) == (2.0, 2.0)
    loop.advance(1.0)
    sensor.value = 5
    loop.advance(5.0)
    assert obs.seen == [(0.0, 1), (2.0, 5), (4.0, 5)]
    sampler.close()
    assert loop.pending == []
    loop.advance(10.0)
    assert len(obs.seen) == 3


def test_sampler_event_rate(loop: FakeLoop) -> None:
    sensor = Sensor(int, "s")
    obs = Observed(loop)
    sampler = SensorSampler.factory(sensor, obs, loop, Strategy.EVENT_RATE, b"1", b"10")
    assert sampler is not None
    assert loop.pending == [10.0]
    loop.advance(0.2)
    sensor.value = 1
    sensor.value = 2
    assert loop.pending == [1.0]
    loop.advance(25.0)
    assert obs.seen == [(0.0, 0), (1.0, 2), (11.0, 2), (21.0, 2)]
    sampler.close()


def test_sampler_differential(loop: FakeLoop) -> None:
    sensor = Sensor(float, "s", initial_status=Status.NOMINAL)
    obs = Observed(loop)
    sampler = SensorSampler.factory(sensor, obs, loop, Strategy.DIFFERENTIAL, b"0.5")
    assert sampler is not None and sampler.difference == 0.5
    for value in (0.5, 0.6, 1.1):
        sensor.value = value
    sensor.set_value(1.2, Status.WARN)  # status changes always count
    assert [v for _, v in obs.seen] == [0.0, 0.6, 1.1, 1.2]
    sampler.close()


def test_sampler_auto_and_auto_strategy(loop: FakeLoop) -> None:
    sensor = Sensor(int, "s")
    obs = Observed(loop)
    sampler = SensorSampler.factory(sensor, obs, loop, Strategy.AUTO)
    assert sampler is not None and sampler.is_auto and sampler.always_update
    sensor.value = 0
    sensor.value = 0
    assert len(obs.seen) == 3
    assert sampler.parameters() == (Strategy.AUTO,)
    sampler.close()

    rated = Sensor(
        int,
        "r",
        auto_strategy=Strategy.EVENT_RATE,
        auto_strategy_parameters=(1, 10),
    )
    obs2 = Observed(loop)
    sampler2 = SensorSampler.factory(rated, obs2, loop, Strategy.AUTO)
    assert sampler2 is not None
    assert sampler2.parameters() == (Strategy.AUTO,)
    assert (sampler2.shortest, sampler2.longest) == (1.0, 10.0)
    rated.value = 0  # unchanged: not sent
    assert len(obs2.seen) == 1
    sampler2.close()


def test_factory_none_and_errors(loop: FakeLoop) -> None:
    sensor = Sensor(str, "s")
    assert SensorSampler.factory(sensor, None, loop, Strategy.NONE) is None
    with pytest.raises(ValueError, match="expected 1 strategy arguments, found 0"):
        SensorSampler.factory(sensor, None, loop, Strategy.PERIOD)
    with pytest.raises(ValueError, match="expected 0 strategy arguments, found 1"):
        SensorSampler.factory(sensor, None, loop, Strategy.AUTO, b"1")
    with pytest.raises(TypeError, match="only valid for integer and float"):
        SensorSampler.factory(sensor, None, loop, Strategy.DIFFERENTIAL, b"1")
    with pytest.raises(ValueError, match="period must be positive"):
        SensorSampler.factory(sensor, None, loop, Strategy.PERIOD, b"0")
    bad_auto = Sensor(int, "b", auto_strategy=Strategy.PERIOD, auto_strategy_parameters=(-1,))
    with pytest.raises(ValueError, match="period must be positive"):
        SensorSampler.factory(bad_auto, None, loop, Strategy.AUTO)
    assert sensor._observers == ()


def test_sampler_constructor(loop: FakeLoop) -> None:
    sensor = Sensor(int, "s")
    obs = Observed(loop)
    sampler = SensorSampler(sensor, obs, loop, 2, Timestamp(1), Timestamp(5))
    assert sampler.parameters() == (Strategy.DIFFERENTIAL_RATE, 2, 1.0, 5.0)
    assert sampler.loop is loop
    assert not sampler.is_auto
    sampler.close()
    with pytest.raises(ValueError, match="period must be positive"):
        SensorSampler(sensor, obs, loop, longest=Timestamp(0))
    auto = SensorSampler(sensor, obs, loop, always_update=True, is_auto=True)
    assert auto.parameters() == (Strategy.AUTO,)
    auto.close()
    assert sensor._observers == ()


def test_sampler_observer_setter(loop: FakeLoop) -> None:
    sensor = Sensor(int, "s")
    sampler = SensorSampler.factory(sensor, None, loop, Strategy.EVENT)
    assert sampler is not None
    sensor.value = 3  # no observer: nothing reported
    obs = Observed(loop)
    sampler.observer = obs
    assert obs.seen == [(0.0, 3)]
    sampler.close()


def test_sampler_closed_by_observer(loop: FakeLoop) -> None:
    sensor = Sensor(int, "s")
    holder: List[SensorSampler[int]] = []
    seen: List[int] = []

    def observer(s: Sensor[int], r: Reading[int]) -> None:
        seen.append(r.value)
        if r.value == 2:
            holder[0].close()

    sampler = SensorSampler.factory(sensor, observer, loop, Strategy.EVENT_RATE, b"0", b"5")
    assert sampler is not None
    holder.append(sampler)
    sensor.value = 2
    assert loop.pending == []
    sensor.value = 3
    assert seen == [0, 2]


def test_unclosed_sampler_warns(loop: FakeLoop) -> None:
    sensor = Sensor(int, "s")
    sampler = SensorSampler.factory(sensor, lambda s, r: None, loop, Strategy.PERIOD, b"1")
    assert sampler is not None
    with pytest.warns(ResourceWarning, match="unclosed SensorSampler for 's'"):
        del sampler  # the sensor and the timer only hold it weakly
    assert sensor._observers == ()
    loop.advance(5.0)  # the timer only held a weak reference


def test_unclosed_auto_sampler_in_cycle_detaches(loop: FakeLoop) -> None:
    """A plain-auto sampler freed by the cycle collector stops reporting and detaches."""
    sensor = Sensor(int, "s")
    seen: List[int] = []
    sampler = SensorSampler.factory(sensor, lambda s, r: seen.append(r.value), loop, Strategy.AUTO)
    assert sampler is not None
    sampler.cycle = sampler  # type: ignore[attr-defined]  # only the collector can free it
    sensor.value = 1
    with pytest.warns(ResourceWarning, match="unclosed SensorSampler for 's'"):
        del sampler
        gc.collect()
    assert sensor._observers == ()
    sensor.value = 2
    assert seen == [0, 1]


def test_sampler_strategy_enum() -> None:
    assert [s.name for s in Strategy] == [
        "NONE",
        "AUTO",
        "PERIOD",
        "EVENT",
        "DIFFERENTIAL",
        "EVENT_RATE",
        "DIFFERENTIAL_RATE",
    ]
    assert encode(Strategy.DIFFERENTIAL_RATE) == b"differential-rate"


def test_delta_observer_detection() -> None:
    import functools

    sensor = Sensor(int, "s")
    calls: List[str] = []

    class Obj:
        def method(self, s: Sensor[int], r: Reading[int], *, old_reading: Reading[int]) -> None:
            calls.append("method")

        def __call__(self, s: Sensor[int], r: Reading[int], old_reading: Reading[int]) -> None:
            calls.append("callable")

    def wrapped(s: Sensor[int], r: Reading[int], *, old_reading: Reading[int]) -> None:
        calls.append("wrapped")

    @functools.wraps(wrapped)
    def decorator(*args: Any, **kwargs: Any) -> None:
        wrapped(*args, **kwargs)

    def keyword(s: Sensor[int], r: Reading[int], **kwargs: Any) -> None:
        assert not kwargs
        calls.append("kwargs")

    def partial_target(tag: str, s: Sensor[int], r: Reading[int], *, old_reading: Any) -> None:
        calls.append(tag)

    for observer in (
        Obj().method,
        Obj(),
        decorator,
        keyword,
        functools.partial(partial_target, "partial"),
    ):
        sensor.attach(observer)
    sensor.value = 1
    assert sorted(calls) == ["callable", "kwargs", "method", "partial", "wrapped"]


def test_delta_observer_detection_of_slotted_callables_is_per_instance_correct() -> None:
    """Slotted callable classes are recognised once per class, and each instance is called right."""

    class Delta:
        __slots__ = ("calls",)

        def __init__(self) -> None:
            self.calls: List[Any] = []

        def __call__(self, s: Sensor[int], r: Reading[int], old_reading: Reading[int]) -> None:
            self.calls.append(old_reading.value)

    class Plain:
        __slots__ = ("calls",)

        def __init__(self) -> None:
            self.calls: List[Any] = []

        def __call__(self, s: Sensor[int], r: Reading[int]) -> None:
            self.calls.append(r.value)

    sensor = Sensor(int, "s", default=5)
    observers = [Delta(), Delta(), Plain(), Plain()]
    for observer in observers:
        sensor.attach(observer)
    sensor.value = 6
    assert [o.calls for o in observers] == [[5], [5], [6], [6]]
