"""KATCP protocol versions and dialects.

:class:`ProtocolFlags` names a protocol version with its feature flags
(``5.1-MIB``); :class:`Lru` is the value type of the v4-era ``lru`` sensor
type; :class:`VersionInfo` is one version row a device announced
(:attr:`aiokatcp.client.Client.versions`). See :doc:`/v4`.
"""

from ._dialect import VersionInfo
from ._lru import Lru
from ._protocol_flags import ProtocolFlags

__all__ = ["Lru", "ProtocolFlags", "VersionInfo"]
