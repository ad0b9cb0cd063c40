"""KATCP protocol versions and feature flags (``5.1-MIB``).

Pure module: no asyncio, no I/O. A :class:`ProtocolFlags` names the dialect a
device speaks: the major/minor protocol version and the single-character
feature flags of ``#version-connect katcp-protocol``. Which behaviour each
version and flag implies lives in :mod:`._dialect`; this module only knows the
text form and the version each flag needs.

Rules (checked against katcp-python 0.9.3, see ``tests/test_protocol_flags.py``):

- ``I`` needs major 5 or later; ``B`` and ``T`` need 5.1 or later
  (:exc:`ValueError` otherwise, as katcp-python).
- Unknown flag characters are kept: later protocol versions may add flags and
  clients must ignore the ones they do not know. Flags are case-sensitive.
- Unlike katcp-python, which turns text it cannot parse into version 0.0,
  :meth:`ProtocolFlags.parse` raises :exc:`ValueError`: a silent 0.0 would
  make a client treat a broken device as pre-v4.
"""

from __future__ import annotations

import re
from typing import Any, FrozenSet, Iterable, Tuple, Union

__all__ = ["ProtocolFlags"]

_VERSION_RE = re.compile(r"([0-9]+)\.([0-9]+)(?:-(.*))?", re.DOTALL)
#: Known flags in the order they are written (so 5.1-MIB formats as aiokatcp 2.3 sends it).
_FLAG_ORDER = "MIBT"
_MIN_VERSION = {"I": (5, 0), "B": (5, 1), "T": (5, 1)}
_FLAG_NAMES = {
    "I": "MESSAGE_IDS",
    "B": "BULK_SET_SENSOR_SAMPLING",
    "T": "REQUEST_TIMEOUT_HINTS",
}


def _flag_key(flag: str) -> Tuple[int, str]:
    index = _FLAG_ORDER.find(flag)
    return (index if index >= 0 else len(_FLAG_ORDER), flag)


class ProtocolFlags:
    """A KATCP protocol version with its feature flags.

    Parameters
    ----------
    major, minor
        Protocol version (non-negative integers).
    flags
        Feature flags, each a single character (a string such as ``"MIB"``
        is an iterable of flags too). Duplicates collapse.

    Raises
    ------
    ValueError
        if a flag is not a single non-blank character, a version number is
        negative, or a flag needs a later version (``I``: 5.0, ``B``/``T``: 5.1)
    TypeError
        if `major` or `minor` is not an integer

    Notes
    -----
    Instances are immutable and hashable; equal when version and flags are
    equal. Ordering (``<``, ``>=``, ...) compares the version only, against
    another :class:`ProtocolFlags` or a ``(major, minor)`` tuple, so
    ``flags >= (5, 1)`` asks "is this 5.1 or later?".
    """

    __module__ = "aiokatcp.protocol"

    #: ``M``: the device accepts several clients at once.
    MULTI_CLIENT = "M"
    #: ``I``: the device supports message ids (``?name[id]``).
    MESSAGE_IDS = "I"
    #: ``B``: ``?sensor-sampling`` accepts a comma-separated list of sensors (v5.1).
    BULK_SET_SENSOR_SAMPLING = "B"
    #: ``T``: the device answers ``?request-timeout-hint`` (v5.1).
    REQUEST_TIMEOUT_HINTS = "T"

    __slots__ = ("_flags", "_major", "_minor")

    def __init__(self, major: int, minor: int, flags: Iterable[str] = ()) -> None:
        for number in (major, minor):
            if isinstance(number, bool) or not isinstance(number, int):
                raise TypeError(f"protocol version numbers must be int, not {number!r}")
            if number < 0:
                raise ValueError(f"protocol version numbers must not be negative: {number}")
        if isinstance(flags, (bytes, bytearray)):
            raise TypeError("flags must be str characters, not bytes")
        flag_set = frozenset(flags)
        for flag in flag_set:
            if not isinstance(flag, str) or len(flag) != 1 or flag.isspace():
                raise ValueError(f"a protocol flag must be one non-blank character: {flag!r}")
            needed = _MIN_VERSION.get(flag)
            if needed is not None and (major, minor) < needed:
                raise ValueError(
                    f"{_FLAG_NAMES[flag]} ({flag}) is only supported in katcp "
                    f"v{needed[0]}.{needed[1]} and newer, not {major}.{minor}"
                )
        self._major = major
        self._minor = minor
        self._flags = flag_set

    @classmethod
    def parse(cls, text: Union[str, bytes]) -> ProtocolFlags:
        """Parse ``<major>.<minor>[-<flags>]``, e.g. ``5.1-MIB`` or ``4.0``.

        ``5.0-`` (an empty flag list) is accepted, as katcp-python does.

        Raises
        ------
        ValueError
            if `text` is not of that form, or the flags are not valid for the
            version (see the class)
        """
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("ascii")
            except UnicodeDecodeError:
                raise ValueError(f"unparsable katcp protocol version {text!r}") from None
        match = _VERSION_RE.fullmatch(text)
        if match is None:
            raise ValueError(f"unparsable katcp protocol version {text!r}")
        return cls(int(match.group(1)), int(match.group(2)), match.group(3) or "")

    @property
    def major(self) -> int:
        """Major protocol version."""
        return self._major

    @property
    def minor(self) -> int:
        """Minor protocol version."""
        return self._minor

    @property
    def version(self) -> Tuple[int, int]:
        """``(major, minor)``."""
        return (self._major, self._minor)

    @property
    def flags(self) -> FrozenSet[str]:
        """The feature flags (single characters), unknown ones included."""
        return self._flags

    def supports(self, flag: str) -> bool:
        """Whether `flag` (e.g. :attr:`MESSAGE_IDS`) is set."""
        return flag in self._flags

    @property
    def multi_client(self) -> bool:
        """Whether :attr:`MULTI_CLIENT` is set."""
        return self.MULTI_CLIENT in self._flags

    @property
    def message_ids(self) -> bool:
        """Whether :attr:`MESSAGE_IDS` is set."""
        return self.MESSAGE_IDS in self._flags

    @property
    def bulk_set_sensor_sampling(self) -> bool:
        """Whether :attr:`BULK_SET_SENSOR_SAMPLING` is set."""
        return self.BULK_SET_SENSOR_SAMPLING in self._flags

    @property
    def request_timeout_hints(self) -> bool:
        """Whether :attr:`REQUEST_TIMEOUT_HINTS` is set."""
        return self.REQUEST_TIMEOUT_HINTS in self._flags

    def _flag_text(self) -> str:
        return "".join(sorted(self._flags, key=_flag_key))

    def __str__(self) -> str:
        """The wire form: ``5.1-MIB`` (known flags in M, I, B, T order, then others sorted)."""
        flags = self._flag_text()
        return f"{self._major}.{self._minor}" + (f"-{flags}" if flags else "")

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8")

    def __repr__(self) -> str:
        return f"ProtocolFlags({self._major}, {self._minor}, {self._flag_text()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProtocolFlags):
            return NotImplemented
        return self.version == other.version and self._flags == other._flags

    def __hash__(self) -> int:
        return hash((self._major, self._minor, self._flags))

    @staticmethod
    def _other_version(other: Any) -> Any:
        if isinstance(other, ProtocolFlags):
            return other.version
        if (
            isinstance(other, tuple)
            and len(other) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in other)
        ):
            return other
        return NotImplemented

    def __lt__(self, other: Union[ProtocolFlags, Tuple[int, int]]) -> bool:
        version = self._other_version(other)
        return NotImplemented if version is NotImplemented else self.version < version

    def __le__(self, other: Union[ProtocolFlags, Tuple[int, int]]) -> bool:
        version = self._other_version(other)
        return NotImplemented if version is NotImplemented else self.version <= version

    def __gt__(self, other: Union[ProtocolFlags, Tuple[int, int]]) -> bool:
        version = self._other_version(other)
        return NotImplemented if version is NotImplemented else self.version > version

    def __ge__(self, other: Union[ProtocolFlags, Tuple[int, int]]) -> bool:
        version = self._other_version(other)
        return NotImplemented if version is NotImplemented else self.version >= version
