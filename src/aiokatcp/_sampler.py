"""The sampling driver: :class:`SensorSampler` runs a subscription's rules on a loop.

Pure: no asyncio. The rules themselves (what a strategy means, when to report)
are :mod:`._sampling`'s; a sampler attaches to its sensor, feeds each reading to
its :class:`~aiokatcp._sampling.SamplerState`, reports to its observer and keeps
the one timer the state asks for, on any loop with ``time()`` and ``call_at()``
(:class:`LoopLike`). The sensor holds the sampler only through a weak
reference, so a sampler dropped without :meth:`SensorSampler.close` stops
reporting (with a :exc:`ResourceWarning`).
"""

from __future__ import annotations

import abc
import warnings
import weakref
from typing import Any, Callable, Generic, List, Optional, Protocol, Tuple, TypeVar

from typing_extensions import TypeAlias

from ._sampling import (
    Observer,
    ReadingLike,
    SamplerState,
    SensorLike,
    Strategy,
    StrategySpec,
    resolve_strategy,
    spec_from_parameters,
)
from ._typeinfo import encode
from ._values import Timestamp

__all__ = ["HandleLike", "LoopLike", "SensorSampler"]

_T = TypeVar("_T")
_StrategyEnum = Strategy  # (the class attribute SensorSampler.Strategy shadows the name)


class HandleLike(Protocol):
    """A scheduled call that can be cancelled (e.g. :class:`asyncio.TimerHandle`)."""

    def cancel(self) -> None: ...


class LoopLike(Protocol):
    """The part of an event loop a :class:`SensorSampler` needs (``asyncio`` loops fit)."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> HandleLike: ...


_deref = weakref.ref.__call__


class _ForwardAll(weakref.ref):  # type: ignore[type-arg]
    """Sensor callback of a plain ``auto`` sampler: forwards every reading to its observer."""

    __slots__ = ()

    def __call__(self, sensor: Any, reading: Any) -> None:  # type: ignore[override]
        sampler = _deref(self)
        if sampler is not None:
            observer = sampler._observer
            if observer is not None:
                observer(sensor, reading)


class _ForwardUpdate(weakref.ref):  # type: ignore[type-arg]
    """Sensor callback of a sampler with state: hands each reading to the sampler."""

    __slots__ = ()

    def __call__(self, sensor: Any, reading: Any) -> None:  # type: ignore[override]
        sampler = _deref(self)
        if sampler is not None:
            sampler._update(reading)


def _fire_timer(ref: weakref.ReferenceType[SensorSampler[Any]]) -> None:
    sampler = ref()
    if sampler is not None:
        sampler._on_timer()


class SensorSampler(Generic[_T], metaclass=abc.ABCMeta):
    """Reports a sensor's readings to one observer according to a sampling strategy.

    The loop (anything with ``time()`` and ``call_at()``) supplies the clock
    and the timers; the decisions are made by
    :class:`~aiokatcp._sampling.SamplerState`. The sensor only holds a weak
    reference to the sampler, so a sampler that is dropped without
    :meth:`close` stops reporting and emits a :exc:`ResourceWarning`.

    Parameters
    ----------
    sensor
        The sensor to watch.
    observer
        Called as ``observer(sensor, reading)`` for each report; ``None`` to
        report nothing (yet).
    loop
        Clock and timers.
    difference, shortest, longest, always_update
        Engine settings D, S, L and ``always`` (see :mod:`._sampling`).
    is_auto
        Whether the sampler implements the client's ``auto`` strategy
        (:meth:`parameters` then says ``auto``).

    Raises
    ------
    ValueError
        if ``longest <= 0`` (``period must be positive``) or other settings
        are out of range
    """

    Strategy: TypeAlias = _StrategyEnum

    def __init__(
        self,
        sensor: SensorLike[_T],
        observer: Optional[Observer],
        loop: LoopLike,
        difference: Optional[_T] = None,
        shortest: float = Timestamp(0),
        longest: Optional[float] = None,
        *,
        always_update: bool = False,
        is_auto: bool = False,
    ) -> None:
        self._closed = True  # until fully set up, so __del__ stays quiet on errors
        spec = spec_from_parameters(difference, shortest, longest, always_update)
        self._setup(sensor, observer, loop, spec, is_auto)

    @classmethod
    def _from_spec(
        cls,
        sensor: SensorLike[_T],
        observer: Optional[Observer],
        loop: LoopLike,
        spec: StrategySpec,
        is_auto: bool,
    ) -> SensorSampler[_T]:
        sampler = cls.__new__(cls)
        sampler._closed = True
        sampler._setup(sensor, observer, loop, spec, is_auto)
        return sampler

    def _setup(
        self,
        sensor: SensorLike[_T],
        observer: Optional[Observer],
        loop: LoopLike,
        spec: StrategySpec,
        is_auto: bool,
    ) -> None:
        self.sensor: Optional[SensorLike[_T]] = sensor
        self.loop = loop
        self.difference = spec.difference
        self.shortest = spec.shortest
        self.longest = spec.longest
        self.always_update = spec.always_update
        self.is_auto = is_auto
        self._spec = spec
        # Plain ``auto`` forwards every reading: it needs no sampling state (a bulk
        # subscription makes thousands of samplers; fewer objects, shorter GC passes).
        plain = spec.is_plain_auto
        self._state: Optional[SamplerState] = None if plain else SamplerState(spec)
        self._timer: Optional[HandleLike] = None
        self._timer_when: Optional[float] = None
        self._observer = observer
        # The callback is a weak reference to the sampler (one object per sampler: a bulk
        # subscription makes thousands). A dead sampler's callback does nothing; its
        # __del__ (via close) detaches it.
        callback: Callable[..., None] = _ForwardAll(self) if plain else _ForwardUpdate(self)
        self._callback = callback
        self._closed = False
        sensor.attach(callback)
        if observer is None:
            return
        if plain:
            # (_start without the calls: a bulk subscription starts thousands at once.)
            observer(sensor, sensor.reading)
        else:
            self._start()

    # -- engine plumbing --------------------------------------------------------------------

    def _start(self) -> None:
        sensor = self.sensor
        assert sensor is not None
        reading = sensor.reading
        state = self._state
        if state is not None:
            state.start(reading, self.loop.time())
        self._report(reading)

    def _report(self, reading: ReadingLike[_T]) -> None:
        observer = self._observer
        sensor = self.sensor
        if observer is not None and sensor is not None:
            observer(sensor, reading)
        # (_sync_timer has nothing to do without state and timer: plain ``auto``.)
        if not self._closed and (self._state is not None or self._timer_when is not None):
            self._sync_timer()

    def _sync_timer(self) -> None:
        state = self._state
        when = None if state is None else state.deadline
        if when == self._timer_when:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_when = when
        if when is not None:
            self._timer = self.loop.call_at(when, _fire_timer, weakref.ref(self))

    def _update(self, reading: ReadingLike[_T]) -> None:
        state = self._state
        if state is None:  # plain auto: every reading is reported
            self._report(reading)
        elif state.on_reading(reading, self.loop.time()):
            self._report(reading)
        elif state.deadline != self._timer_when:
            self._sync_timer()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_when = None
        sensor = self.sensor
        if sensor is None:
            return
        reading = sensor.reading
        if self._state is not None:
            self._state.on_timer(reading, self.loop.time())
        self._report(reading)

    # -- public API -------------------------------------------------------------------------

    @property
    def observer(self) -> Optional[Observer]:
        """Where reports go; setting it reports the current reading straight away."""
        return self._observer

    @observer.setter
    def observer(self, observer: Optional[Observer]) -> None:
        self._observer = observer
        if observer is not None and not self._closed:
            self._start()

    def parameters(self) -> Tuple[Any, ...]:
        """The strategy and its parameters, e.g. ``(Strategy.PERIOD, 0.5)``.

        ``(Strategy.AUTO,)`` for a sampler made from the ``auto`` strategy,
        whatever the sensor's :attr:`Sensor.auto_strategy` is.
        """
        if self.is_auto:
            return (Strategy.AUTO,)
        return (self._spec.strategy, *self._spec.params)

    def wire_parameters(self) -> List[bytes]:
        """:meth:`parameters` encoded as argument bytes."""
        return [encode(param) for param in self.parameters()]

    def close(self) -> None:
        """Stop reporting: detach from the sensor and cancel the timer."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_when = None
        if self.sensor is not None:
            self.sensor.detach(self._callback)
            self.sensor = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            warnings.warn(
                f"unclosed SensorSampler for {getattr(self.sensor, 'name', None)!r}",
                ResourceWarning,
                stacklevel=1,
            )
            self.close()

    @classmethod
    def factory(
        cls,
        sensor: SensorLike[_T],
        observer: Optional[Observer],
        loop: LoopLike,
        strategy: _StrategyEnum,
        *args: bytes,
    ) -> Optional[SensorSampler[_T]]:
        """Make a sampler from a strategy and its raw wire parameters.

        Returns ``None`` for :attr:`Strategy.NONE`. ``auto`` uses the
        sensor's :attr:`~Sensor.auto_strategy`.

        Raises
        ------
        ValueError
            for a wrong parameter count (``expected N strategy arguments,
            found M``), undecodable or out-of-range parameters
        TypeError
            for a differential strategy on a non-numeric sensor
        """
        spec, is_auto = resolve_strategy(sensor, strategy, args)
        if spec is None:
            return None
        return cls._from_spec(sensor, observer, loop, spec, is_auto)
