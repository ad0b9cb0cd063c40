"""Messages and the type registry (the public aiokatcp 2.x module path).

This module only re-exports; the code lives in the pure private modules
:mod:`._values`, :mod:`._typeinfo`, :mod:`._message` and :mod:`._codec`.
"""

from ._codec import DEFAULT_LIMIT, MessageParser, encode_messages
from ._message import Message
from ._typeinfo import TypeInfo, decode, encode, get_decoder, get_type, register_type
from ._values import Address, DeviceStatus, LogLevel, Now, Timestamp, TimestampOrNow
from .exceptions import KatcpSyntaxError

__all__ = [
    "DEFAULT_LIMIT",
    "Address",
    "DeviceStatus",
    "KatcpSyntaxError",
    "LogLevel",
    "Message",
    "MessageParser",
    "Now",
    "Timestamp",
    "TimestampOrNow",
    "TypeInfo",
    "decode",
    "encode",
    "encode_messages",
    "get_decoder",
    "get_type",
    "register_type",
]

# The classes live in private modules; report this public path (for reprs, pickles,
# mypy messages, IDEs and Sphinx), as 2.x did.
for _cls in (
    Address,
    DeviceStatus,
    KatcpSyntaxError,
    LogLevel,
    Message,
    MessageParser,
    Now,
    Timestamp,
    TypeInfo,
    decode,
    encode,
    get_decoder,
    get_type,
    register_type,
):
    _cls.__module__ = __name__
del _cls
