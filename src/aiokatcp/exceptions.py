"""Every exception aiokatcp raises on purpose, under one root.

Pure module: imports nothing from the package. The public 2.x paths
(``aiokatcp.core.KatcpSyntaxError``, ``aiokatcp.connection.FailReply``, ...)
re-export these classes, so ``except`` clauses written for 2.x keep working.

::

    KatcpError
     ├── KatcpSyntaxError (also ValueError)   a line that is not valid KATCP
     ├── ProtocolError (also ValueError)      the peer speaks a protocol we cannot use
     ├── FailReply                            a request failed  (``!name fail ...``)
     └── InvalidReply                         a request was malformed (``!name invalid ...``)

Connection failures are reported with the built-in ``ConnectionError``
subclasses (``ConnectionResetError``, ``BrokenPipeError``, ...), which is what
asyncio users already catch.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["FailReply", "InvalidReply", "KatcpError", "KatcpSyntaxError", "ProtocolError"]


class KatcpError(Exception):
    """Base class of every exception defined by aiokatcp."""


class KatcpSyntaxError(KatcpError, ValueError):
    """A line (or part of one) does not follow the KATCP grammar.

    Parameters
    ----------
    message
        What is wrong, in words.
    raw
        The offending bytes, if known.
    """

    def __init__(self, message: str, raw: Optional[bytes] = None) -> None:
        super().__init__(message)
        self.raw = raw


class ProtocolError(KatcpError, ValueError):
    """The peer announced a protocol version that this library cannot speak.

    Parameters
    ----------
    msg
        What is wrong, in words.
    version
        The protocol version string the peer sent.
    """

    def __init__(self, msg: str, version: str) -> None:
        super().__init__(msg)
        self.version = version


class FailReply(KatcpError):
    """A request failed.

    Raise it in a request handler to reply ``fail <message>`` (no traceback
    is logged); :meth:`.Client.request` raises it when the reply is ``fail``.
    """


class InvalidReply(KatcpError):
    """A request was malformed or unknown.

    Raise it in a request handler to reply ``invalid <message>``;
    :meth:`.Client.request` raises it for ``invalid`` or any other
    non-``ok``/non-``fail`` reply code.
    """


# Report the public 2.x paths (which re-export these classes) in reprs, mypy and Sphinx.
KatcpSyntaxError.__module__ = "aiokatcp.core"
ProtocolError.__module__ = "aiokatcp.client"
FailReply.__module__ = "aiokatcp.connection"
InvalidReply.__module__ = "aiokatcp.connection"
