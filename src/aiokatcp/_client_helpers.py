"""Small pieces of the client that need no client state.

Owned by :mod:`aiokatcp.client`: parsing ``#version-connect`` versions and
timeout hints, decoding ``#sensor-value`` informs, re-logging ``#log``
informs, and calling user callbacks without letting them break the client.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

from ._lru import Lru
from ._message import Message
from ._typeinfo import get_decoder
from ._values import Address, LogLevel, Timestamp
from .exceptions import FailReply, InvalidReply
from .sensor import Reading, Sensor

__all__ = [
    "call_isolated",
    "connection_reset",
    "decode_sensor_value",
    "expire",
    "log_remote",
    "parse_protocol_version",
    "parse_timeout_hints",
    "reply_error",
    "sensor_value_type",
]

logger = logging.getLogger("aiokatcp.client")
#: ``#log`` informs from servers are re-logged here (level mapped from the KATCP level).
remote_logger = logging.getLogger("aiokatcp.client.remote")

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)(?:-(.*))?$")
_LOG_LEVELS = {level.name.lower().encode(): int(level) for level in LogLevel}
#: Python types used to decode sensor values by KATCP type name (discrete and string: bytes).
_SENSOR_VALUE_TYPES: Dict[bytes, type] = {
    b"integer": int,
    b"float": float,
    b"boolean": bool,
    b"timestamp": Timestamp,
    b"address": Address,
    b"lru": Lru,
}
_decode_status = get_decoder(Sensor.Status)
_decode_timestamp = get_decoder(Timestamp)


def parse_protocol_version(version: str) -> Optional[Tuple[int, int, FrozenSet[str]]]:
    """Split ``5.1-MIB`` into ``(5, 1, {"M", "I", "B"})``; ``None`` if malformed."""
    match = _VERSION_RE.match(version)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), frozenset(match.group(3) or "")


def parse_timeout_hints(
    informs: List[Message], log: logging.LoggerAdapter[Any]
) -> Dict[str, float]:
    """Turn ``#request-timeout-hint <name> <seconds>`` informs into a dict (0 = no hint)."""
    hints: Dict[str, float] = {}
    decode_float = get_decoder(float)
    for inform in informs:
        try:
            name, raw = inform.arguments
            hint = decode_float(raw)
            if hint > 0:
                hints[name.decode("ascii")] = hint
        except (ValueError, UnicodeDecodeError):
            log.warning("Ignoring malformed timeout hint: %s", inform)
    return hints


def sensor_value_type(sensor_list_informs: List[Message], name: str) -> type:
    """The Python type for decoding a sensor's value, from its ``#sensor-list`` inform."""
    if len(sensor_list_informs) != 1 or len(sensor_list_informs[0].arguments) < 4:
        raise FailReply(f"unexpected ?sensor-list reply for {name!r}")
    return _SENSOR_VALUE_TYPES.get(sensor_list_informs[0].arguments[3], bytes)


def decode_sensor_value(informs: List[Message], sensor_type: Any) -> Reading[Any]:
    """Decode the single ``#sensor-value`` inform expected in `informs`."""
    if len(informs) != 1:
        raise FailReply(f"Server returned {len(informs)} sensors, but only 1 expected")
    args = informs[0].arguments
    if len(args) != 5:
        raise ValueError(f"malformed #sensor-value inform: {informs[0]}")
    timestamp = _decode_timestamp(args[0])
    status = _decode_status(args[3])
    value = get_decoder(sensor_type)(args[4])
    return Reading(timestamp, status, value)


def log_remote(
    address: object, level: bytes, timestamp: bytes, name: bytes, message: Tuple[bytes, ...]
) -> None:
    """Re-log a server's ``#log`` message locally, at the matching Python level."""
    pylevel = _LOG_LEVELS.get(level.lower(), logging.WARNING)
    text = b" ".join(message).decode("utf-8", errors="replace")
    remote_name = name.decode("utf-8", errors="replace")
    remote_logger.log(
        max(pylevel, 1),
        "%s: %s [%s]",
        remote_name,
        text,
        address,
        extra={"katcp_logger": remote_name, "katcp_timestamp": timestamp},
    )


def reply_error(name: str, reply_args: List[bytes]) -> Exception:
    """The exception for a reply that is not ``ok`` (``Client.request`` raises it)."""
    text = b" ".join(reply_args[1:]).decode("utf-8", errors="replace")
    if not reply_args:
        return InvalidReply(f"empty reply to ?{name}")
    if reply_args[0] == b"fail":
        return FailReply(text)
    if reply_args[0] == b"invalid":
        return InvalidReply(text)
    code = reply_args[0].decode("utf-8", errors="replace")
    return InvalidReply(f"{code}: {text}" if text else code)


def call_isolated(what: str, func: Callable[..., Any], *args: Any) -> None:
    """Call a user callback, logging (not propagating) any exception it raises."""
    try:
        func(*args)
    except Exception:
        logger.exception("Exception in %s %r", what, func)


def connection_reset() -> Exception:
    """The exception pending requests fail with when the connection goes."""
    return ConnectionResetError("Connection to the server was lost")


def expire(future: asyncio.Future[Any], name: str, timeout: float) -> None:
    """Timer callback: fail a request that got no reply in time."""
    if not future.done():
        future.set_exception(asyncio.TimeoutError(f"No reply to ?{name} within {timeout} s"))
