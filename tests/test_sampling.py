"""Pure sampling-strategy engine: parsing, validation and timing with explicit times."""

from __future__ import annotations

import enum
import math
from typing import Any, List, Optional, Tuple

import pytest

from aiokatcp import Address, Timestamp
from aiokatcp._sampling import (
    DEFAULT_MIN_INTERVAL,
    SamplerState,
    Strategy,
    StrategySpec,
    make_spec,
    parse_spec,
    resolve_strategy,
    spec_from_parameters,
)
from aiokatcp.sensor import Reading, Sensor

NOMINAL = Sensor.Status.NOMINAL
WARN = Sensor.Status.WARN
S = Strategy


class Colour(enum.Enum):
    RED = 1
    GREEN = 2


class Sim:
    """Drive a SamplerState through time, keeping the sensor's current reading."""

    def __init__(self, spec: Optional[StrategySpec], value: Any = 0, now: float = 0.0) -> None:
        assert spec is not None
        self.state = SamplerState(spec)
        self.current = Reading(now, NOMINAL, value)
        self.sent: List[Tuple[float, Reading[Any]]] = []
        self.state.start(self.current, now)
        self.sent.append((now, self.current))

    def advance(self, t: float) -> None:
        """Fire every timer due at or before `t` (exactly on time)."""
        while self.state.deadline is not None and self.state.deadline <= t:
            when = self.state.deadline
            self.state.on_timer(self.current, when)
            self.sent.append((when, self.current))

    def set(self, t: float, value: Any, status: Sensor.Status = NOMINAL) -> bool:
        self.advance(t)
        self.current = Reading(t, status, value)
        send = self.state.on_reading(self.current, t)
        if send:
            self.sent.append((t, self.current))
        return send

    def times(self) -> List[float]:
        return [t for t, _ in self.sent]

    def values(self) -> List[Any]:
        return [r.value for _, r in self.sent]


def spec(strategy: Strategy, *raw: bytes, stype: Any = float) -> Optional[StrategySpec]:
    return parse_spec(strategy, raw, stype)


# -- parsing and validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "raw", "stype", "wire"),
    [
        (S.AUTO, (), str, [b"auto"]),
        (S.EVENT, (), Address, [b"event"]),
        (S.PERIOD, (b"0.5",), bool, [b"period", b"0.5"]),
        (S.PERIOD, (b"2",), Colour, [b"period", b"2.0"]),
        (S.DIFFERENTIAL, (b"3",), int, [b"differential", b"3"]),
        (S.DIFFERENTIAL, (b"0.25",), float, [b"differential", b"0.25"]),
        (S.DIFFERENTIAL, (b"0",), int, [b"differential", b"0"]),
        (S.EVENT_RATE, (b"1", b"10"), bytes, [b"event-rate", b"1.0", b"10.0"]),
        (S.EVENT_RATE, (b"0", b"1"), int, [b"event-rate", b"0.0", b"1.0"]),
        (S.EVENT_RATE, (b"2", b"2"), int, [b"event-rate", b"2.0", b"2.0"]),
        (
            S.DIFFERENTIAL_RATE,
            (b"2", b"1", b"5"),
            int,
            [b"differential-rate", b"2", b"1.0", b"5.0"],
        ),
    ],
)
def test_parse_valid(
    strategy: Strategy, raw: Tuple[bytes, ...], stype: Any, wire: List[bytes]
) -> None:
    result = parse_spec(strategy, raw, stype)
    assert result is not None
    assert result.strategy is strategy
    assert result.wire_params() == wire


def test_parse_none() -> None:
    assert parse_spec(S.NONE, (), int) is None


def test_parse_engine_settings() -> None:
    period = spec(S.PERIOD, b"0.5")
    assert period is not None
    assert (period.shortest, period.longest, period.difference, period.always_update) == (
        0.5,
        0.5,
        None,
        False,
    )
    auto = spec(S.AUTO)
    assert auto is not None and auto.always_update and auto.is_plain_auto
    drate = spec(S.DIFFERENTIAL_RATE, b"3", b"1", b"5", stype=int)
    assert drate is not None
    assert (drate.difference, drate.shortest, drate.longest) == (3, 1.0, 5.0)
    assert type(drate.difference) is int
    assert not drate.is_plain_auto


@pytest.mark.parametrize(
    ("strategy", "raw", "message"),
    [
        (S.NONE, (b"1",), "expected 0 strategy arguments, found 1"),
        (S.AUTO, (b"1",), "expected 0 strategy arguments, found 1"),
        (S.EVENT, (b"1", b"2"), "expected 0 strategy arguments, found 2"),
        (S.PERIOD, (), "expected 1 strategy arguments, found 0"),
        (S.PERIOD, (b"1", b"2"), "expected 1 strategy arguments, found 2"),
        (S.DIFFERENTIAL, (), "expected 1 strategy arguments, found 0"),
        (S.EVENT_RATE, (b"1",), "expected 2 strategy arguments, found 1"),
        (S.DIFFERENTIAL_RATE, (b"1", b"2"), "expected 3 strategy arguments, found 2"),
        (S.PERIOD, (b"0",), "period must be positive"),
        (S.PERIOD, (b"-1",), "period must be positive"),
        (S.PERIOD, (b"nan",), "period must be positive"),
        (S.PERIOD, (b"inf",), "period must be positive"),
        (S.PERIOD, (b"soon",), "could not convert string to float: b'soon'"),
        (S.EVENT_RATE, (b"2", b"1"), "must not be greater than longest"),
        (S.EVENT_RATE, (b"0", b"0"), "longest interval must be positive"),
        (S.EVENT_RATE, (b"1", b"-1"), "longest interval must be positive"),
        (S.EVENT_RATE, (b"-1", b"1"), "shortest interval must not be negative"),
        (S.DIFFERENTIAL, (b"-1",), "difference must not be negative"),
        (S.DIFFERENTIAL, (b"nan",), "difference must not be negative"),
        (S.DIFFERENTIAL, (b"x",), "could not convert string to float: b'x'"),
        (S.DIFFERENTIAL_RATE, (b"1", b"3", b"2"), "must not be greater than longest"),
        (S.DIFFERENTIAL_RATE, (b"-1", b"1", b"2"), "difference must not be negative"),
    ],
)
def test_parse_invalid(strategy: Strategy, raw: Tuple[bytes, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_spec(strategy, raw, float)


def test_differential_difference_uses_sensor_type() -> None:
    with pytest.raises(ValueError, match="invalid literal for int"):
        parse_spec(S.DIFFERENTIAL, (b"1.5",), int)
    result = parse_spec(S.DIFFERENTIAL, (b"1.5",), float)
    assert result is not None and result.difference == 1.5


@pytest.mark.parametrize("stype", [str, bytes, bool, Timestamp, Address, Colour])
@pytest.mark.parametrize("strategy", [S.DIFFERENTIAL, S.DIFFERENTIAL_RATE])
def test_differential_only_numeric(strategy: Strategy, stype: Any) -> None:
    raw = (b"1",) if strategy is S.DIFFERENTIAL else (b"1", b"1", b"2")
    with pytest.raises(TypeError, match="only valid for integer and float sensors"):
        parse_spec(strategy, raw, stype)


def test_count_checked_before_type() -> None:
    with pytest.raises(ValueError, match="expected 1 strategy arguments, found 0"):
        parse_spec(S.DIFFERENTIAL, (), str)


def test_make_spec_decoded() -> None:
    result = make_spec(S.EVENT_RATE, (0.5, 10), int)
    assert result is not None and result.params == (0.5, 10.0)
    with pytest.raises(TypeError, match="must be a number"):
        make_spec(S.PERIOD, ("1",), int)
    with pytest.raises(TypeError, match="must be a number"):
        make_spec(S.DIFFERENTIAL, (True,), int)
    assert make_spec(S.NONE, (), int) is None


@pytest.mark.parametrize(
    ("args", "strategy", "params"),
    [
        ((None, 0, None, True), S.AUTO, ()),
        ((None, 0, None, False), S.EVENT, ()),
        ((None, 2, 2, False), S.PERIOD, (2.0,)),
        ((None, 1, 5, False), S.EVENT_RATE, (1.0, 5.0)),
        ((None, 0, 5, False), S.EVENT_RATE, (0.0, 5.0)),
        ((3, 0, None, False), S.DIFFERENTIAL, (3,)),
        ((3, 1, 5, False), S.DIFFERENTIAL_RATE, (3, 1.0, 5.0)),
    ],
)
def test_spec_from_parameters(
    args: Tuple[Any, ...], strategy: Strategy, params: Tuple[Any, ...]
) -> None:
    result = spec_from_parameters(*args)
    assert result.strategy is strategy
    assert result.params == params


def test_spec_from_parameters_invalid() -> None:
    with pytest.raises(ValueError, match="period must be positive"):
        spec_from_parameters(None, 0, 0, False)
    with pytest.raises(ValueError, match="must not be greater"):
        spec_from_parameters(None, 3, 2, False)
    with pytest.raises(ValueError, match="must not be negative"):
        spec_from_parameters(None, -1, None, False)
    with pytest.raises(ValueError, match="must not be negative"):
        spec_from_parameters(-1, 0, None, False)


def test_spec_repr_and_eq() -> None:
    assert repr(spec(S.PERIOD, b"1")) == "StrategySpec(Strategy.PERIOD, 1.0)"
    assert spec(S.PERIOD, b"1") == spec(S.PERIOD, b"1.0")
    assert spec(S.PERIOD, b"1") != spec(S.PERIOD, b"2")
    assert spec(S.EVENT) != "event"


# -- timing ----------------------------------------------------------------------------------


def test_start_reports_now() -> None:
    sim = Sim(spec(S.EVENT), value=7, now=3.0)
    assert sim.sent == [(3.0, Reading(3.0, NOMINAL, 7))]
    assert sim.state.deadline is None


def test_auto_sends_every_update() -> None:
    sim = Sim(spec(S.AUTO), value=1)
    assert sim.set(1.0, 1)
    assert sim.set(1.0, 1)
    assert sim.set(2.0, 2)
    assert sim.times() == [0.0, 1.0, 1.0, 2.0]
    assert sim.state.deadline is None


def test_event_equal_values_not_sent() -> None:
    sim = Sim(spec(S.EVENT), value=1)
    assert not sim.set(1.0, 1)  # timestamp-only change
    assert sim.set(2.0, 2)
    assert not sim.set(3.0, 2)
    assert sim.set(4.0, 1)
    assert sim.values() == [1, 2, 1]
    assert sim.state.deadline is None


def test_event_status_only_change() -> None:
    sim = Sim(spec(S.EVENT), value=1)
    assert sim.set(1.0, 1, WARN)
    assert not sim.set(2.0, 1, WARN)
    assert sim.set(3.0, 1, NOMINAL)
    assert [r.status for _, r in sim.sent] == [NOMINAL, WARN, NOMINAL]


def test_event_compares_with_last_sent() -> None:
    sim = Sim(spec(S.EVENT), value="a")
    assert sim.set(1.0, "b")
    assert not sim.set(2.0, "b")
    assert sim.set(3.0, "a")


def test_differential_boundary() -> None:
    sim = Sim(spec(S.DIFFERENTIAL, b"2", stype=int), value=10)
    assert not sim.set(1.0, 12)  # exactly D is not a change
    assert not sim.set(2.0, 8)
    assert sim.set(3.0, 13)  # > D from the last *sent* value (10)
    assert not sim.set(4.0, 11)  # compared with 13 now
    assert sim.set(5.0, 10)
    assert sim.values() == [10, 13, 10]


def test_differential_zero_means_any_change() -> None:
    sim = Sim(spec(S.DIFFERENTIAL, b"0", stype=int), value=1)
    assert not sim.set(1.0, 1)
    assert sim.set(2.0, 2)


def test_differential_status_change() -> None:
    sim = Sim(spec(S.DIFFERENTIAL, b"5", stype=float), value=1.0)
    assert sim.set(1.0, 1.5, WARN)
    assert not sim.set(2.0, 2.0, WARN)


def test_differential_nan() -> None:
    sim = Sim(spec(S.DIFFERENTIAL, b"1", stype=float), value=1.0)
    assert sim.set(1.0, math.nan)
    assert not sim.set(2.0, math.nan)
    assert sim.set(3.0, 1.0)


def test_period_resends_unchanged_with_original_timestamp() -> None:
    sim = Sim(spec(S.PERIOD, b"2"), value=5, now=1.0)
    assert sim.state.deadline == 3.0
    sim.advance(7.5)
    assert sim.times() == [1.0, 3.0, 5.0, 7.0]
    assert all(reading.timestamp == 1.0 for _, reading in sim.sent)


def test_period_holds_changes_until_tick() -> None:
    sim = Sim(spec(S.PERIOD, b"2"), value=0)
    assert not sim.set(0.5, 1)
    assert not sim.set(1.0, 2)
    assert sim.state.deadline == 2.0
    sim.advance(2.0)
    assert sim.sent[-1] == (2.0, Reading(1.0, NOMINAL, 2))
    sim.advance(4.0)
    assert sim.times() == [0.0, 2.0, 4.0]


def test_period_fixed_rate_when_timer_late() -> None:
    state = SamplerState(make_spec(S.PERIOD, (1.0,), float))  # type: ignore[arg-type]
    reading = Reading(0.0, NOMINAL, 0)
    state.start(reading, 0.0)
    state.on_timer(reading, 1.2)  # fired 0.2 late: the next is still due at 2.0
    assert state.deadline == 2.0
    state.on_timer(reading, 5.5)  # far behind: catch up at once, not with a burst
    assert state.deadline == 5.5
    state.on_timer(reading, 5.5)
    assert state.deadline == 6.5


def test_event_rate_burst_gives_one_update_with_latest() -> None:
    sim = Sim(spec(S.EVENT_RATE, b"1", b"10"), value=0)
    assert not sim.set(0.2, 1)
    assert sim.state.deadline == 1.0
    assert not sim.set(0.5, 2)
    assert not sim.set(0.9, 3)
    sim.advance(1.0)
    assert sim.sent[-1] == (1.0, Reading(0.9, NOMINAL, 3))
    assert sim.state.deadline == 11.0


def test_event_rate_change_after_shortest_sent_at_once() -> None:
    sim = Sim(spec(S.EVENT_RATE, b"1", b"10"), value=0)
    assert sim.set(1.5, 1)
    assert sim.state.deadline == 11.5  # longest restarts from the last report


def test_event_rate_unchanged_reported_every_longest() -> None:
    sim = Sim(spec(S.EVENT_RATE, b"1", b"10"), value=0)
    assert not sim.set(3.0, 0)
    sim.advance(35.0)
    assert sim.times() == [0.0, 10.0, 20.0, 30.0]


def test_event_rate_pending_absorbs_changes_back() -> None:
    # A pending report carries whatever is current when it fires, even the old value.
    sim = Sim(spec(S.EVENT_RATE, b"1", b"10"), value=0)
    sim.set(0.2, 1)
    sim.set(0.4, 0)
    sim.advance(1.0)
    assert sim.sent[-1] == (1.0, Reading(0.4, NOMINAL, 0))


def test_event_rate_zero_shortest() -> None:
    sim = Sim(spec(S.EVENT_RATE, b"0", b"5"), value=0)
    assert sim.set(0.0, 1)
    assert sim.set(0.0, 2)
    assert sim.state.deadline == 5.0


def test_differential_rate() -> None:
    sim = Sim(spec(S.DIFFERENTIAL_RATE, b"2", b"1", b"10", stype=int), value=0)
    assert not sim.set(0.5, 2)  # exactly D: not a change
    assert sim.state.deadline == 10.0
    assert not sim.set(0.6, 3)  # a change, but too soon
    assert sim.state.deadline == 1.0
    sim.advance(1.0)
    assert sim.sent[-1][0] == 1.0 and sim.sent[-1][1].value == 3
    assert not sim.set(5.0, 4)
    assert sim.set(6.0, 6)
    sim.advance(16.0)
    assert sim.times() == [0.0, 1.0, 6.0, 16.0]


def test_differential_rate_status_change() -> None:
    sim = Sim(spec(S.DIFFERENTIAL_RATE, b"100", b"0", b"10", stype=float), value=0.0)
    assert sim.set(1.0, 0.0, WARN)


def test_restart_resets_schedule() -> None:
    sim = Sim(spec(S.EVENT_RATE, b"1", b"10"), value=0)
    sim.set(0.5, 1)
    assert sim.state.pending
    sim.state.start(sim.current, 0.7)
    assert not sim.state.pending
    assert sim.state.deadline == 10.7


# -- minimum sampling interval (hostile clients) ---------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "raw", "message"),
    [
        (S.PERIOD, (b"1e-6",), "period must be at least 0.001 s"),
        (S.PERIOD, (b"0.0009",), "period must be at least 0.001 s"),
        (S.EVENT_RATE, (b"0", b"1e-6"), "longest interval must be at least 0.001 s"),
        (S.DIFFERENTIAL_RATE, (b"1", b"0", b"1e-9"), "longest interval must be at least 0.001 s"),
    ],
)
def test_default_minimum_interval(strategy: Strategy, raw: Tuple[bytes, ...], message: str) -> None:
    assert DEFAULT_MIN_INTERVAL == 0.001
    with pytest.raises(ValueError, match=f"{message} \\(the server's minimum sampling interval\\)"):
        parse_spec(strategy, raw, float)


@pytest.mark.parametrize(
    ("strategy", "raw"),
    [
        (S.PERIOD, (b"0.001",)),
        (S.EVENT_RATE, (b"0", b"0.001")),  # S = 0 (report every change) stays valid
        (S.EVENT_RATE, (b"0.0001", b"1")),
        (S.DIFFERENTIAL_RATE, (b"1", b"0", b"0.5")),
    ],
)
def test_minimum_interval_allows_at_and_above(strategy: Strategy, raw: Tuple[bytes, ...]) -> None:
    assert parse_spec(strategy, raw, float) is not None


def test_minimum_interval_is_configurable() -> None:
    with pytest.raises(ValueError, match=r"period must be at least 0\.5 s"):
        parse_spec(S.PERIOD, (b"0.25",), float, min_interval=0.5)
    with pytest.raises(ValueError, match=r"longest interval must be at least 0\.5 s"):
        parse_spec(S.EVENT_RATE, (b"0", b"0.25"), float, min_interval=0.5)
    relaxed = parse_spec(S.PERIOD, (b"1e-6",), float, min_interval=0.0)
    assert relaxed is not None and relaxed.longest == 1e-6
    # Still positive, whatever the minimum.
    with pytest.raises(ValueError, match="period must be positive"):
        parse_spec(S.PERIOD, (b"0",), float, min_interval=0.0)


def test_resolve_strategy_passes_minimum_but_not_for_auto() -> None:
    sensor: Sensor[float] = Sensor(float, "fast", "device-chosen fast period")
    with pytest.raises(ValueError, match=r"period must be at least 0\.001 s"):
        resolve_strategy(sensor, S.PERIOD, [b"1e-4"])
    with pytest.raises(ValueError, match=r"period must be at least 0\.01 s"):
        resolve_strategy(sensor, S.PERIOD, [b"0.005"], min_interval=0.01)
    sensor.auto_strategy = S.PERIOD
    sensor.auto_strategy_parameters = (1e-4,)
    spec, is_auto = resolve_strategy(sensor, S.AUTO, [], min_interval=0.01)
    assert is_auto and spec is not None and spec.longest == 1e-4
    # Python API for device code is not bounded either.
    assert make_spec(S.PERIOD, (1e-4,), float) is not None
