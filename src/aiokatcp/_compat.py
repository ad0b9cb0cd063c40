"""Backports of asyncio features newer than Python 3.9, in one place.

``timeout(delay)`` is :func:`asyncio.timeout` on Python 3.11 and newer and its
backport, ``async_timeout.timeout`` (a dependency only on older Pythons),
before that. Both raise :exc:`asyncio.TimeoutError` when the delay expires
(``None`` means no limit).
"""

import sys

if sys.version_info >= (3, 11):
    from asyncio import timeout
else:  # pragma: no cover - exercised on the 3.9/3.10 CI only
    from async_timeout import timeout

__all__ = ["timeout"]
