"""Small pieces of the client that need no client state.

Owned by :mod:`aiokatcp.client`: parsing ``#version-connect`` versions and
timeout hints, turning replies into exceptions, re-logging ``#log``
informs, and calling user callbacks without letting them break the client.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from typing import Any, Callable, Dict, Iterable, List, Tuple, Union

from ._message import Message
from ._typeinfo import get_decoder
from ._values import LogLevel
from .exceptions import FailReply, InvalidReply

__all__ = [
    "call_isolated",
    "connection_reset",
    "enable_tcp_keepalive",
    "expire",
    "log_remote",
    "parse_timeout_hints",
    "reply_error",
]

#: ``#log`` informs from servers are re-logged here (level mapped from the KATCP level).
remote_logger = logging.getLogger("aiokatcp.client.remote")

_LOG_LEVELS = {level.name.lower().encode(): int(level) for level in LogLevel}


def parse_timeout_hints(
    informs: Iterable[Message], log: Union[logging.Logger, logging.LoggerAdapter[Any]]
) -> Dict[str, float]:
    """Turn ``#request-timeout-hint <name> <seconds>`` informs into a dict.

    A hint of 0 (or one that is not finite) means "no hint" and is left out.
    Malformed informs are logged and skipped: hints are advice, and the
    device's requests still work without them.
    """
    hints: Dict[str, float] = {}
    decode_float = get_decoder(float)
    for inform in informs:
        try:
            name, raw = inform.arguments
            hint = decode_float(raw)
            if hint > 0 and math.isfinite(hint):
                hints[name.decode("ascii")] = hint
        except (ValueError, UnicodeDecodeError):
            log.warning("Ignoring malformed timeout hint: %s", inform)
    return hints


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


def reply_error(reply_args: List[bytes]) -> Exception:
    """The exception for a reply that is not ``ok`` (``Client.request`` raises it).

    As in 2.x, its message is the reply's second argument only (empty if none).
    """
    text = reply_args[1].decode("utf-8", errors="replace") if len(reply_args) > 1 else ""
    if reply_args and reply_args[0] == b"fail":
        return FailReply(text)
    return InvalidReply(text)


def call_isolated(
    log: logging.LoggerAdapter[Any], what: str, func: Callable[..., Any], *args: Any
) -> None:
    """Call a user callback, logging (not propagating) any exception it raises."""
    try:
        func(*args)
    except Exception:
        log.exception("Exception in %s %r", what, func)


def connection_reset() -> Exception:
    """The exception pending requests fail with when the connection goes."""
    return ConnectionResetError("Connection to the server was lost")


def expire(future: asyncio.Future[Any], name: str, timeout: float) -> None:
    """Timer callback: fail a request that got no reply in time."""
    if not future.done():
        future.set_exception(asyncio.TimeoutError(f"No reply to ?{name} within {timeout} s"))


def enable_tcp_keepalive(transport: Any, interval: float, log: logging.LoggerAdapter[Any]) -> None:
    """Let the kernel probe an idle connection too (it sees a dead peer even mid-request)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        seconds = max(1, int(interval))
        for option in ("TCP_KEEPIDLE", "TCP_KEEPINTVL"):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), seconds)
        if hasattr(socket, "TCP_KEEPCNT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError as exc:  # pragma: no cover - depends on the platform
        log.debug("Could not enable TCP keepalive: %s", exc)
