"""Sampling strategies: when does a subscriber get a sensor reading?

Pure: no asyncio. Times are plain floats supplied by the caller (the server
uses ``loop.time()``), so every rule here can be tested with literal numbers.
This module owns the :class:`Strategy` enum, parsing and validating
``?sensor-sampling`` parameters into a :class:`StrategySpec`, and the
per-subscription state machine :class:`SamplerState`: the rules.
:class:`~aiokatcp._sampler.SensorSampler` (in :mod:`._sampler`, re-exported by
:mod:`aiokatcp.sensor`) drives that state machine from a loop. Sensors and
readings are only used through their attributes (:class:`SensorLike`,
:class:`ReadingLike`), so this module does not import :mod:`aiokatcp.sensor`.

Rules (katcp-protocol §7), in terms of shortest interval S, longest interval
L, difference D and the ``always`` flag:

1. Starting a subscription reports the current reading at once.
2. A reading is a *change* if ``always`` is set, or its status differs from the
   last reported status, or (no D) its value differs from the last reported
   value, or (D given) ``|value - last value| > D``. A change of timestamp
   alone is not a change. Exactly D is not a change.
3. A change is reported at once if at least S has passed since the last
   report; otherwise one report is scheduled for ``last + S`` and carries the
   reading that is current *then*. Further changes before that are absorbed.
4. If L is set, after every report the next one is scheduled for
   ``max(now, report time + L)``; it resends the current reading with its own
   (possibly old) timestamp.

Strategy mapping: ``auto`` = always, ``event`` = change detection,
``differential D``, ``period P`` = S = L = P, ``event-rate S L``,
``differential-rate D S L``.
"""

from __future__ import annotations

import enum
import math
import numbers
from typing import (
    Any,
    Callable,
    Iterable,
    List,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    TypeVar,
)

from ._typeinfo import encode, get_decoder, get_type
from ._values import Timestamp

_T_co = TypeVar("_T_co", covariant=True)


class ReadingLike(Protocol[_T_co]):
    """What sampling reads of a reading (:class:`aiokatcp.sensor.Reading` has it).

    Declared here so that this module does not import :mod:`aiokatcp.sensor`,
    which imports it.
    """

    @property
    def timestamp(self) -> float: ...  # pragma: no cover

    @property
    def status(self) -> Any: ...  # pragma: no cover

    @property
    def value(self) -> _T_co: ...  # pragma: no cover


class SensorLike(Protocol[_T_co]):
    """What sampling uses of a sensor (:class:`aiokatcp.sensor.Sensor` has it)."""

    @property
    def name(self) -> str: ...  # pragma: no cover

    @property
    def stype(self) -> Any: ...  # pragma: no cover

    @property
    def auto_strategy(self) -> Any: ...  # pragma: no cover

    @property
    def auto_strategy_parameters(self) -> Any: ...  # pragma: no cover

    @property
    def reading(self) -> ReadingLike[_T_co]: ...  # pragma: no cover

    def attach(self, observer: Callable[..., None]) -> None: ...  # pragma: no cover

    def detach(self, observer: Callable[..., None]) -> None: ...  # pragma: no cover


#: A sampler's observer, called as ``observer(sensor, reading)``.
Observer = Callable[[Any, Any], None]

__all__ = [
    "DEFAULT_MIN_INTERVAL",
    "Observer",
    "ReadingLike",
    "SamplerState",
    "SensorLike",
    "Strategy",
    "StrategySpec",
    "make_spec",
    "parse_spec",
    "resolve_strategy",
    "spec_from_parameters",
]

_T = TypeVar("_T")


class Strategy(enum.Enum):
    """Sampling strategies (wire names: ``none``, ``auto``, ``period``, ...)."""

    NONE = 0
    AUTO = 1
    PERIOD = 2
    EVENT = 3
    DIFFERENTIAL = 4
    EVENT_RATE = 5
    DIFFERENTIAL_RATE = 6


#: Number of wire parameters each strategy takes.
PARAM_COUNT = {
    Strategy.NONE: 0,
    Strategy.AUTO: 0,
    Strategy.PERIOD: 1,
    Strategy.EVENT: 0,
    Strategy.DIFFERENTIAL: 1,
    Strategy.EVENT_RATE: 2,
    Strategy.DIFFERENTIAL_RATE: 3,
}
_DIFFERENTIAL = (Strategy.DIFFERENTIAL, Strategy.DIFFERENTIAL_RATE)
_NUMERIC_TYPE_NAMES = ("integer", "float")


class StrategySpec:
    """A validated strategy together with its decoded parameters.

    Build one with :func:`parse_spec` (wire bytes), :func:`make_spec`
    (decoded values) or :func:`spec_from_parameters` (the 2.x
    :class:`~aiokatcp.sensor.SensorSampler` constructor arguments).

    Attributes
    ----------
    strategy
        The strategy (never :attr:`Strategy.NONE`).
    params
        Decoded parameters in wire order, e.g. ``(0.5,)`` for ``period 0.5``.
    difference, shortest, longest, always_update
        The engine settings D, S, L and ``always`` (see the module docstring).
    """

    __slots__ = ("always_update", "difference", "longest", "params", "shortest", "strategy")

    def __init__(
        self,
        strategy: Strategy,
        params: Tuple[Any, ...],
        *,
        difference: Any = None,
        shortest: float = 0.0,
        longest: Optional[float] = None,
        always_update: bool = False,
    ) -> None:
        self.strategy = strategy
        self.params = params
        self.difference = difference
        self.shortest = shortest
        self.longest = longest
        self.always_update = always_update

    def wire_params(self) -> List[bytes]:
        """Strategy name and parameters as argument bytes, for the ``?sensor-sampling`` reply."""
        return [encode(self.strategy)] + [encode(param) for param in self.params]

    @property
    def is_plain_auto(self) -> bool:
        """Whether every update is reported at once and nothing is ever scheduled."""
        return self.always_update and self.shortest == 0 and self.longest is None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StrategySpec):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        params = "".join(f", {param!r}" for param in self.params)
        return f"StrategySpec(Strategy.{self.strategy.name}{params})"


#: Default smallest ``period`` and longest interval (seconds) a client may ask for on the
#: wire. asyncio's selector waits in whole milliseconds, so a shorter period cannot be
#: honoured and only turns into a busy loop; aiokatcp 2.3 accepted any positive value.
DEFAULT_MIN_INTERVAL = 0.001


def _check_minimum(value: float, what: str, min_interval: float) -> None:
    if value < min_interval:
        raise ValueError(
            f"{what} must be at least {min_interval!r} s (the server's minimum sampling interval)"
        )


def _check_interval(value: Any, what: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number")
    if allow_zero:
        if number < 0:
            raise ValueError(f"{what} must not be negative")
    elif number <= 0:
        raise ValueError(f"{what} must be positive")
    return number


def _check_rate(shortest: Any, longest: Any, min_interval: float) -> Tuple[float, float]:
    short = _check_interval(shortest, "shortest interval", allow_zero=True)
    long = _check_interval(longest, "longest interval", allow_zero=False)
    _check_minimum(long, "longest interval", min_interval)
    if short > long:
        raise ValueError(
            f"shortest interval ({short!r}) must not be greater than longest interval ({long!r})"
        )
    return short, long


def _check_difference(difference: Any) -> Any:
    if isinstance(difference, bool) or not isinstance(difference, numbers.Real):
        raise TypeError(f"difference must be a number, not {type(difference).__name__}")
    if not float(difference) >= 0:  # also rejects NaN
        raise ValueError("difference must not be negative")
    return difference


def _check_differential_type(sensor_type: Any) -> None:
    if get_type(sensor_type).name not in _NUMERIC_TYPE_NAMES:
        raise TypeError("differential strategies only valid for integer and float sensors")


def make_spec(
    strategy: Strategy,
    params: Sequence[Any],
    sensor_type: Any,
    *,
    min_interval: float = 0.0,
) -> Optional[StrategySpec]:
    """Validate a strategy with already-decoded parameters.

    Returns ``None`` for :attr:`Strategy.NONE`. `min_interval` is the
    smallest period P or longest interval L accepted (0: any positive value,
    for strategies the device itself chose). The shortest interval S is not
    bounded: it only delays reports, so ``event-rate 0 L`` stays valid.

    Raises
    ------
    ValueError
        for a wrong number of parameters or an out-of-range value (S > L,
        P <= 0, L <= 0, S < 0, D < 0, P or L < `min_interval`)
    TypeError
        for a differential strategy on a sensor that is not integer or float,
        or a parameter that is not a number
    """
    strategy = Strategy(strategy)
    expected = PARAM_COUNT[strategy]
    if len(params) != expected:
        raise ValueError(f"expected {expected} strategy arguments, found {len(params)}")
    if strategy in _DIFFERENTIAL:
        _check_differential_type(sensor_type)
    if strategy is Strategy.NONE:
        return None
    if strategy is Strategy.AUTO:
        return StrategySpec(strategy, (), always_update=True)
    if strategy is Strategy.EVENT:
        return StrategySpec(strategy, ())
    if strategy is Strategy.PERIOD:
        # The wording is kept from aiokatcp 2.x, which clients may match on.
        try:
            period = _check_interval(params[0], "period", allow_zero=False)
        except ValueError:
            raise ValueError("period must be positive") from None
        _check_minimum(period, "period", min_interval)
        return StrategySpec(strategy, (period,), shortest=period, longest=period)
    if strategy is Strategy.DIFFERENTIAL:
        diff = _check_difference(params[0])
        return StrategySpec(strategy, (diff,), difference=diff)
    if strategy is Strategy.EVENT_RATE:
        short, long = _check_rate(params[0], params[1], min_interval)
        return StrategySpec(strategy, (short, long), shortest=short, longest=long)
    diff = _check_difference(params[0])
    short, long = _check_rate(params[1], params[2], min_interval)
    return StrategySpec(
        strategy, (diff, short, long), difference=diff, shortest=short, longest=long
    )


def parse_spec(
    strategy: Strategy,
    raw_params: Sequence[bytes],
    sensor_type: Any,
    *,
    min_interval: float = DEFAULT_MIN_INTERVAL,
) -> Optional[StrategySpec]:
    """Decode and validate ``?sensor-sampling`` parameters for a sensor of `sensor_type`.

    The difference D is decoded as the sensor's own type (so ``1.5`` is not a
    valid difference for an integer sensor); intervals are decoded as
    timestamps (seconds). Returns ``None`` for :attr:`Strategy.NONE`.
    These come from a client, so a period or longest interval below
    `min_interval` (default :data:`DEFAULT_MIN_INTERVAL`) is refused.

    Raises
    ------
    ValueError, TypeError
        as :func:`make_spec`, plus :exc:`ValueError` for undecodable bytes
    """
    strategy = Strategy(strategy)
    expected = PARAM_COUNT[strategy]
    if len(raw_params) != expected:
        raise ValueError(f"expected {expected} strategy arguments, found {len(raw_params)}")
    if strategy in _DIFFERENTIAL:
        _check_differential_type(sensor_type)
    decoded: List[Any] = []
    time_decoder = get_decoder(Timestamp)
    for i, raw in enumerate(raw_params):
        if strategy in _DIFFERENTIAL and i == 0:
            decoded.append(get_decoder(sensor_type)(raw))
        else:
            decoded.append(float(time_decoder(raw)))
    return make_spec(strategy, decoded, sensor_type, min_interval=min_interval)


def spec_from_parameters(
    difference: Any, shortest: float, longest: Optional[float], always_update: bool
) -> StrategySpec:
    """Build a spec from the engine settings, naming the strategy they amount to.

    Used when a sampler is constructed directly rather than from the wire.

    Raises
    ------
    ValueError
        for a non-positive `longest` (``period must be positive``), a negative
        `shortest` or `difference`, or `shortest` > `longest`
    """
    short = _check_interval(shortest, "shortest interval", allow_zero=True)
    long: Optional[float] = None
    if longest is not None:
        try:
            long = _check_interval(longest, "period", allow_zero=False)
        except ValueError:
            raise ValueError("period must be positive") from None
        if short > long:
            raise ValueError(
                f"shortest interval ({short!r}) must not be greater than longest "
                f"interval ({long!r})"
            )
    if difference is not None:
        _check_difference(difference)
    strategy: Strategy
    params: Tuple[Any, ...]
    if always_update:
        strategy, params = Strategy.AUTO, ()
    elif difference is not None:
        if short == 0 and long is None:
            strategy, params = Strategy.DIFFERENTIAL, (difference,)
        else:
            strategy, params = Strategy.DIFFERENTIAL_RATE, (difference, short, long)
    elif long is not None and short == long:
        strategy, params = Strategy.PERIOD, (long,)
    elif short == 0 and long is None:
        strategy, params = Strategy.EVENT, ()
    else:
        strategy, params = Strategy.EVENT_RATE, (short, long)
    return StrategySpec(
        strategy,
        params,
        difference=difference,
        shortest=short,
        longest=long,
        always_update=always_update,
    )


def _differs(value: Any, last: Any, difference: Any) -> bool:
    """``|value - last| > difference``, treating a move to or from NaN as a change."""
    delta = abs(value - last)
    if delta > difference:
        return True
    if delta <= difference:
        return False
    # delta is NaN: a change unless both values are NaN
    return bool(value == value) or bool(last == last)


class SamplerState:
    """Per-subscription sampling state (one client, one sensor).

    The caller reports the current reading whenever a method says so, and
    keeps exactly one timer armed for :attr:`deadline` (re-arming it whenever
    the attribute changes); when that time comes it calls :meth:`on_timer`
    and reports the sensor's then-current reading.

    Parameters
    ----------
    spec
        The validated strategy.
    """

    __slots__ = (
        "always_update",
        "deadline",
        "difference",
        "last_status",
        "last_time",
        "last_value",
        "longest",
        "pending",
        "shortest",
    )

    def __init__(self, spec: StrategySpec) -> None:
        self.always_update = spec.always_update
        self.difference = spec.difference
        self.shortest = spec.shortest
        self.longest = spec.longest
        self.last_time = -math.inf
        self.last_value: Any = None
        self.last_status: Any = None
        #: A change is waiting for the timer (rule 3)
        self.pending = False
        #: When :meth:`on_timer` is due, or ``None`` if no timer is needed
        self.deadline: Optional[float] = None

    def _sent(self, reading: Any, when: float, now: float) -> None:
        self.last_time = when
        self.last_value = reading.value
        self.last_status = reading.status
        self.pending = False
        longest = self.longest
        if longest is None:
            self.deadline = None
        else:
            due = when + longest
            self.deadline = due if due > now else now

    def start(self, reading: Any, now: float) -> None:
        """Start (or restart) the subscription; the caller reports `reading` now (rule 1)."""
        self._sent(reading, now, now)

    def on_reading(self, reading: Any, now: float) -> bool:
        """Handle a sensor update; return whether the caller must report `reading` now."""
        if self.pending:
            return False
        if not self.always_update and reading.status is self.last_status:
            difference = self.difference
            if difference is None:
                if not reading.value != self.last_value:
                    return False
            elif not _differs(reading.value, self.last_value, difference):
                return False
        due = self.last_time + self.shortest
        if now >= due:
            self._sent(reading, now, now)
            return True
        self.pending = True
        self.deadline = due
        return False

    def on_timer(self, reading: Any, now: float) -> None:
        """The deadline has passed; the caller reports `reading` (the current one) now.

        The report counts as made at the deadline rather than at `now`, so
        periodic reports keep a fixed rate even when timers fire late.
        """
        when = self.deadline
        self._sent(reading, now if when is None else when, now)


def resolve_strategy(
    sensor: SensorLike[Any],
    strategy: Strategy,
    args: Iterable[bytes],
    *,
    min_interval: float = DEFAULT_MIN_INTERVAL,
) -> Tuple[Optional[StrategySpec], bool]:
    """Validate a wire strategy for `sensor`: return ``(spec or None, is_auto)``.

    Pure and side-effect free, so a server can check a whole bulk request
    before changing anything. `min_interval` bounds the client's parameters
    (see :func:`parse_spec`); ``auto`` uses the sensor's own strategy, which
    the device chose, unbounded.

    Raises
    ------
    ValueError, TypeError
        as :meth:`SensorSampler.factory`
    """
    strategy = Strategy(strategy)
    raw = tuple(args)
    if strategy is Strategy.AUTO:
        if raw:
            raise ValueError(f"expected 0 strategy arguments, found {len(raw)}")
        if sensor.auto_strategy is Strategy.AUTO:
            return make_spec(Strategy.AUTO, (), sensor.stype), True
        return make_spec(sensor.auto_strategy, sensor.auto_strategy_parameters, sensor.stype), True
    return parse_spec(strategy, raw, sensor.stype, min_interval=min_interval), False
