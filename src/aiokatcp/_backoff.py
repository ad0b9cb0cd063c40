"""Randomised exponential back-off delays (pure: no asyncio).

SHIM: minimal stand-in for the agreed API of issue-10; the lead drops this
file at merge in favour of issue-10's version.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator

__all__ = ["backoff_delays"]


def backoff_delays(
    initial: float = 1.0,
    maximum: float = 60.0,
    *,
    factor: float = 2.0,
    jitter: float = 0.5,
    rand: Callable[[], float] = random.random,
) -> Iterator[float]:
    """Yield delay i = min(maximum, initial * factor**i) times a random factor in [1-jitter, 1]."""
    base = initial
    while True:
        yield min(maximum, base) * (1.0 - jitter * rand())
        base = min(maximum, base * factor)
