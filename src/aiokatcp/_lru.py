"""The ``lru`` sensor type (line-replaceable unit): values ``nominal`` and ``error``.

Pure module: no asyncio. ``lru`` is an ordinary type in KATCP v4 and
deprecated (in favour of ``boolean``) in v5, but v4-era devices still list
sensors of this type. Importing this module registers :class:`Lru` with the
type registry, so a ``Sensor(Lru, ...)`` is listed as ``lru`` and decodes and
encodes ``nominal``/``error``; the package imports it at start-up.
"""

from __future__ import annotations

import enum
from typing import Callable, Dict, Type

from ._typeinfo import register_type

__all__ = ["Lru"]


class Lru(enum.Enum):
    """State of a line-replaceable unit, the value type of KATCP ``lru`` sensors."""

    __module__ = "aiokatcp.protocol"

    NOMINAL = 0
    ERROR = 1


_TO_WIRE: Dict[Lru, bytes] = {Lru.NOMINAL: b"nominal", Lru.ERROR: b"error"}
_FROM_WIRE: Dict[bytes, Lru] = {wire: member for member, wire in _TO_WIRE.items()}


def _encode_lru(value: Lru) -> bytes:
    return _TO_WIRE[value]


def _get_lru_decoder(cls: Type[Lru]) -> Callable[[bytes], Lru]:
    def decode_lru(raw: bytes) -> Lru:
        try:
            return _FROM_WIRE[raw]
        except KeyError:
            raise ValueError(
                f"{raw!r} is not a valid lru value (expected nominal or error)"
            ) from None

    return decode_lru


register_type(Lru, "lru", _encode_lru, _get_lru_decoder, lambda cls: Lru.NOMINAL)
