"""Small value types defined by the KATCP specification.

Pure module: no asyncio, no I/O. The type registry (:mod:`._typeinfo`) knows
how to put each of these on the wire.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import re
from typing import Optional, Union

__all__ = ["Address", "DeviceStatus", "LogLevel", "Now", "Timestamp", "TimestampOrNow"]

_IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
# The shape of an address; the host part is then checked by ipaddress, whose error
# (e.g. "Expected 4 octets in 'localhost'") is the error, as in aiokatcp 2.x.
_IPV4_RE = re.compile(r"^(?P<host>[^:]+)(?::(?P<port>[0-9]+))?$")
_IPV6_RE = re.compile(r"^\[(?P<host>[^\]]+)\](?::(?P<port>[0-9]+))?$")


class Address:
    """A KATCP ``address``: an IP address literal with an optional port.

    Host names are deliberately not accepted: the protocol only carries
    addresses, and resolving names would hide I/O inside a value type.

    Parameters
    ----------
    host
        An :class:`ipaddress.IPv4Address` or :class:`ipaddress.IPv6Address`.
    port
        TCP port (0-65535), or ``None`` if the address has no port.

    Raises
    ------
    TypeError
        if `host` is not an IP address object
    ValueError
        if `port` is out of range
    """

    __slots__ = ["_host", "_port"]

    def __init__(self, host: _IPAddress, port: Optional[int] = None) -> None:
        if not isinstance(host, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            raise TypeError(
                f"host must be an IPv4Address or IPv6Address, not {type(host).__name__}"
            )
        if port is not None and not 0 <= port <= 65535:
            raise ValueError(f"port {port} is out of range (0-65535)")
        self._host = host
        self._port = port

    @property
    def host(self) -> _IPAddress:
        """The IP address."""
        return self._host

    @property
    def port(self) -> Optional[int]:
        """The port, or ``None`` if the address has no port."""
        return self._port

    @classmethod
    def parse(cls, raw: bytes) -> Address:
        """Parse ``a.b.c.d[:port]`` or ``[v6-address][:port]``.

        Raises
        ------
        ValueError
            if `raw` is not an address in one of those forms
        """
        text = raw.decode("ascii", "replace")
        # (aiokatcp 2.x's message for an address of the wrong shape.)
        error = ValueError(f"could not parse '{text}' as an address")
        match = (_IPV6_RE if text.startswith("[") else _IPV4_RE).match(text)
        if not match:
            raise error
        # A bad host raises ipaddress.AddressValueError (a ValueError) with its own text.
        host: _IPAddress
        if text.startswith("["):
            host = ipaddress.IPv6Address(match.group("host"))
        else:
            host = ipaddress.IPv4Address(match.group("host"))
        port = match.group("port")
        if port is not None and int(port) > 65535:
            raise error
        return cls(host, int(port) if port is not None else None)

    def __str__(self) -> str:
        host = (
            f"[{self._host}]" if isinstance(self._host, ipaddress.IPv6Address) else str(self._host)
        )
        return host if self._port is None else f"{host}:{self._port}"

    def __bytes__(self) -> bytes:
        return str(self).encode("ascii")

    def __repr__(self) -> str:
        if self._port is None:
            return f"Address({self._host!r})"
        return f"Address({self._host!r}, {self._port!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return (self._host, self._port) == (other._host, other._port)

    def __hash__(self) -> int:
        return hash((self._host, self._port))


class Timestamp(float):
    """A KATCP timestamp: seconds since the Unix epoch (UTC), as a float."""


class Now(enum.Enum):
    """The literal ``now`` that requests taking a time may accept instead of one."""

    NOW = 0


#: Either a timestamp or ``now`` (decoding ``b"now"`` gives :data:`Now.NOW`).
TimestampOrNow = Union[Timestamp, Now]


class LogLevel(enum.IntEnum):
    """KATCP log levels, with values comparable to Python :mod:`logging` levels.

    ``TRACE`` sits between ``ALL`` and ``DEBUG`` (Python levels 1-9 map to it);
    it is a member of its own so that ``?log-level trace`` can be decoded.
    """

    ALL = logging.NOTSET
    TRACE = 5
    DEBUG = logging.DEBUG
    INFO = logging.INFO
    WARN = logging.WARNING
    ERROR = logging.ERROR
    FATAL = logging.CRITICAL
    OFF = logging.CRITICAL + 10

    @classmethod
    def from_python(cls, level: int) -> LogLevel:
        """Map a Python logging level to the nearest KATCP level at or below it.

        A record is never mapped to ``OFF``: anything above ``CRITICAL`` is
        ``FATAL``, so forwarding never silently drops a record.
        """
        best = cls.ALL
        for member in cls:
            if member is not cls.OFF and member.value <= level:
                best = member
        return best


class DeviceStatus(enum.Enum):
    """Values of the conventional discrete ``device-status`` sensor."""

    OK = 1
    DEGRADED = 2
    FAIL = 3
