"""KATCP protocol versions and dialects.

:class:`ProtocolFlags` names a protocol version with its feature flags
(``5.1-MIB``); :class:`Lru` is the value type of the v4-era ``lru`` sensor
type. See :doc:`/v4`.
"""

from ._lru import Lru
from ._protocol_flags import ProtocolFlags

__all__ = ["Lru", "ProtocolFlags"]
