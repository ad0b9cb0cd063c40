"""The one retry policy of the client: randomised exponential back-off.

Pure module (no asyncio). Used for reconnecting and for retrying a failed
sensor-watcher sync, so that both obey the bounds given to
:class:`~aiokatcp.client.Client` (its `backoff` argument).
"""

from __future__ import annotations

import random
from typing import Callable, Iterator, Tuple

__all__ = ["DEFAULT_BACKOFF", "backoff_delays"]

#: ``(initial, maximum)`` seconds used when the client is not given other bounds.
DEFAULT_BACKOFF: Tuple[float, float] = (1.0, 60.0)


def backoff_delays(
    initial: float = 1.0,
    maximum: float = 60.0,
    *,
    factor: float = 2.0,
    jitter: float = 0.5,
    rand: Callable[[], float] = random.random,
) -> Iterator[float]:
    """Yield retry delays for ever: ``min(maximum, initial * factor**i)`` scaled randomly.

    Each delay is multiplied by a random factor in ``[1 - jitter, 1]`` so that
    many clients of one restarted server do not reconnect in lock step.

    Raises
    ------
    ValueError
        if a bound is negative, `maximum` < `initial`, `factor` < 1 or
        `jitter` is outside [0, 1] (raised on the first ``next()``)
    """
    if initial < 0 or maximum < initial:
        raise ValueError(f"invalid back-off bounds: initial={initial}, maximum={maximum}")
    if factor < 1:
        raise ValueError(f"back-off factor must be at least 1, not {factor}")
    if not 0 <= jitter <= 1:
        raise ValueError(f"back-off jitter must be in [0, 1], not {jitter}")
    delay = initial
    while True:
        yield min(delay, maximum) * (1.0 - jitter * rand())
        if delay < maximum:
            delay *= factor
