"""The standard KATCP requests and the ``#log`` bridge of :class:`~aiokatcp.server.DeviceServer`.

asyncio layer. :class:`StandardRequests` is a mixin of ``DeviceServer``
holding ``?halt``, ``?help``, ``?watchdog``, ``?version-list``,
``?log-level``, ``?restart``, ``?client-list`` and ``?request-timeout-hint``,
the version informs, the :meth:`~StandardRequests.restart` hook and the
logging handler :class:`ServerLogHandler` (``DeviceServer.LogHandler``).
The sensor requests live in :mod:`aiokatcp._server_sensors`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from ._values import LogLevel, Timestamp
from ._version import __version__
from .exceptions import FailReply

if TYPE_CHECKING:
    from ._server_conn import ClientConnection, RequestContext
    from .server import DeviceServer

__all__ = ["ServerLogHandler", "StandardRequests"]

_OK = b"ok"


class StandardRequests:
    """Mixin with the standard requests; see the module docstring."""

    VERSION: str
    BUILD_STATE: str
    #: Protocol flags advertised in ``#version-connect katcp-protocol``.
    PROTOCOL_FLAGS = "MIBT"
    extra_versions: Dict[str, Tuple[str, ...]]
    _request_handlers: Dict[str, Callable[..., Any]]
    _request_timeout_hints: Dict[str, float]
    _connections: Dict[ClientConnection, None]
    _log_level: LogLevel

    def halt(self, cancel: bool = True) -> asyncio.Task[None]:
        raise NotImplementedError  # provided by DeviceServer

    async def restart(self) -> None:
        """Hook behind ``?restart``: override to restart the device.

        Raises
        ------
        FailReply
            by default: restarting is not supported
        """
        raise FailReply("restart is not supported by this device")

    def _version_args(self) -> List[List[bytes]]:
        minor = ".".join(__version__.split(".")[:2])
        rows: List[Tuple[str, ...]] = [
            ("katcp-protocol", f"5.1-{self.PROTOCOL_FLAGS}"),
            ("katcp-library", f"aiokatcp-{minor}", f"aiokatcp-{__version__}"),
            ("katcp-device", self.VERSION, self.BUILD_STATE),
        ]
        rows.extend((role, *values) for role, values in self.extra_versions.items())
        return [[value.encode() for value in row] for row in rows]

    def send_version_info(self, ctx: RequestContext, *, send_reply: bool = True) -> None:
        """Send one inform per version role (and, by default, the ``ok <count>`` reply)."""
        ctx.informs(self._version_args(), send_reply=send_reply)

    # -- standard requests ----------------------------------------------------------------------

    async def request_halt(self, ctx: RequestContext) -> None:
        """Halt the device server (the reply is sent first)."""
        ctx.reply(_OK)
        self.halt()

    async def request_help(self, ctx: RequestContext, name: Optional[str] = None) -> None:
        """Describe one request, or list all of them with a summary each.

        Parameters
        ----------
        name
            Request to describe in full (default: list every request).
        """
        handlers = self._request_handlers
        if name is None:
            rows = [(key, _doc_summary(handlers[key])) for key in sorted(handlers)]
        elif name in handlers:
            rows = [(name, inspect.getdoc(handlers[name]) or "")]
        else:
            raise FailReply(f"request {name} is not known")
        ctx.informs(rows)

    async def request_watchdog(self, ctx: RequestContext) -> None:
        """Check that the server is still alive."""

    async def request_version_list(self, ctx: RequestContext) -> None:
        """List the versions of the protocol, library, device and other components."""
        self.send_version_info(ctx)

    async def request_log_level(
        self, ctx: RequestContext, level: Optional[LogLevel] = None
    ) -> LogLevel:
        """Query or set the level of log messages sent to clients.

        Parameters
        ----------
        level
            New level: off, fatal, error, warn, info, debug, trace or all
            (default: leave unchanged). It applies to every client.
        """
        if level is not None:
            self._log_level = level
        return self._log_level

    async def request_restart(self, ctx: RequestContext) -> None:
        """Restart the device (if it supports restarting)."""
        await self.restart()

    async def request_client_list(self, ctx: RequestContext) -> None:
        """List the connected clients."""
        ctx.informs((conn.address,) for conn in self._connections)

    async def request_request_timeout_hint(
        self, ctx: RequestContext, name: Optional[str] = None
    ) -> None:
        """Suggest a timeout (seconds) for one request, or for every request that has one.

        Parameters
        ----------
        name
            Request to ask about (default: every request with a hint; 0 means no hint).
        """
        hints = self._request_timeout_hints
        if name is None:
            ctx.informs((key, hints[key]) for key in sorted(hints))
        elif name in self._request_handlers:
            ctx.informs([(name, hints.get(name, 0.0))])
        else:
            raise FailReply(f"request {name} is not known")


def _doc_summary(handler: Callable[..., Any]) -> str:
    doc = inspect.getdoc(handler) or ""
    return doc.split("\n", 1)[0]


class ServerLogHandler(logging.Handler):
    """Forward Python log records to all clients as ``#log`` informs.

    Records are filtered by the server's ``?log-level``; records from
    ``aiokatcp`` loggers are never forwarded (sending a ``#log`` may
    itself log, which would loop). Python levels map to the nearest
    KATCP level at or below them. Records from other threads are passed
    to the server's loop thread.

    Parameters
    ----------
    server
        The server whose clients get the records.
    """

    def __init__(self, server: DeviceServer) -> None:
        super().__init__()
        self.server = server
        self.setFormatter(logging.Formatter("%(filename)s:%(lineno)d: %(message)s"))

    def filter(self, record: logging.LogRecord) -> bool:  # type: ignore[override,unused-ignore]
        name = record.name
        if name == "aiokatcp" or name.startswith("aiokatcp."):
            return False
        level = self.server._log_level
        if level == LogLevel.OFF or LogLevel.from_python(record.levelno) < level:
            return False
        return bool(super().filter(record))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            args = (
                LogLevel.from_python(record.levelno),
                Timestamp(record.created),
                record.name,
                self.format(record),
            )
            server = self.server
            thread = server._loop_thread
            if thread is None or thread == threading.get_ident():
                server.mass_inform("log", *args)
            else:
                server.loop.call_soon_threadsafe(server.mass_inform, "log", *args)
        except Exception:
            self.handleError(record)
