"""Pure parts of the high-level client: states, names, ``?help`` parsing, matching, quorums.

No I/O here (and no asyncio): :mod:`aiokatcp.remote` and :mod:`aiokatcp.group`
use these with live data, the tests with literal inputs.
"""

from __future__ import annotations

import enum
import keyword
import math
from typing import Any, Callable, Dict, Iterable, Union

from ._message import Message
from ._typeinfo import encode
from .sensor import Reading

__all__ = [
    "Condition",
    "DeviceState",
    "InspectionError",
    "matches",
    "parse_help",
    "python_name",
    "quorum_count",
]


class DeviceState(enum.Enum):
    """Where a :class:`RemoteDevice` is in its life."""

    DISCONNECTED = 1  #: not connected (sensor readings are stale, status ``unreachable``)
    SYNCING = 2  #: connected; requests and sensors are being inspected
    SYNCED = 3  #: requests and sensors are known, sensors subscribed, strategies applied
    FAILED = 4  #: connected, but the last inspection failed (retried with back-off)
    CLOSED = 5  #: closed for good


class InspectionError(Exception):
    """Inspecting a device failed: ``?help`` or the sensor sync (``?sensor-list``).

    The message names the step; ``__cause__`` is the underlying
    :exc:`~aiokatcp.FailReply`, :exc:`~aiokatcp.InvalidReply` or
    :exc:`asyncio.TimeoutError`.
    """


# Public as aiokatcp.remote.DeviceState / InspectionError (defined here so that every
# high-level module can use them without importing the device).
DeviceState.__module__ = "aiokatcp.remote"
InspectionError.__module__ = "aiokatcp.remote"

#: What :meth:`RemoteSensor.wait` accepts: a value to compare with, or a predicate on the reading.
Condition = Union[Callable[[Reading[Any]], bool], Any]


def python_name(name: str) -> str:
    """The attribute name for a KATCP request or sensor name (``-`` and ``.`` become ``_``).

    A name that would be a Python keyword gets a trailing ``_``; one that
    starts with a digit gets a leading ``_``.
    """
    result = name.replace("-", "_").replace(".", "_")
    if keyword.iskeyword(result):
        result += "_"
    if result[:1].isdigit():
        result = "_" + result
    return result


def parse_help(informs: Iterable[Message]) -> Dict[str, str]:
    """Map request name to help text from the ``#help <name> <text>`` informs of ``?help``.

    Raises
    ------
    ValueError
        if an inform has no name or the name is not ASCII (a device whose
        ``?help`` cannot be understood is not inspected rather than half-inspected)
    """
    requests: Dict[str, str] = {}
    for inform in informs:
        args = inform.arguments
        if not args:
            raise ValueError(f"malformed #help inform: {inform}")
        try:
            name = args[0].decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"#help with a non-ASCII request name: {inform}") from None
        requests[name] = b" ".join(args[1:]).decode("utf-8", errors="replace")
    return requests


def _same_wire(a: Any, b: Any) -> bool:
    try:
        return encode(a) == encode(b)
    except (TypeError, ValueError):
        return False


def matches(reading: Reading[Any], condition: Condition) -> bool:
    """Whether `reading` satisfies `condition`.

    A callable is a predicate and receives the reading (whatever its status).
    Anything else is a value: it matches a reading whose status carries a
    value (nominal, warn, error) and whose value is equal to it, or encodes
    to the same KATCP bytes (so ``"tracking"`` matches a discrete or string
    sensor reading ``tracking``).
    """
    if callable(condition) and not isinstance(condition, type):
        return bool(condition(reading))
    if not reading.status.valid_value():
        return False
    value = reading.value
    if value == condition:
        return True
    return _same_wire(value, condition)


def quorum_count(quorum: Union[int, float], members: int) -> int:
    """How many of `members` make a quorum: an ``int`` is a count, a ``float`` a fraction.

    A fraction is rounded up (0.5 of 5 members is 3). The result is at
    least 1 (if there are members) and at most `members`.

    Raises
    ------
    ValueError
        if the count is negative or more than `members`, or the fraction is
        outside (0, 1]
    TypeError
        if `quorum` is neither (``bool`` is rejected to avoid ``True`` meaning 1)
    """
    if isinstance(quorum, bool) or not isinstance(quorum, (int, float)):
        raise TypeError(f"quorum must be an int (a count) or a float (a fraction), not {quorum!r}")
    if isinstance(quorum, int):
        if not 0 <= quorum <= members:
            raise ValueError(f"quorum {quorum} is not between 0 and the {members} members")
        return quorum
    if not 0.0 < quorum <= 1.0:
        raise ValueError(f"quorum fraction {quorum} is not in (0, 1]")
    return min(members, max(1 if members else 0, math.ceil(quorum * members - 1e-9)))
