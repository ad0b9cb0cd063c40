"""KATCP messages: construction, escaping, parsing one line, formatting.

Pure module: no asyncio. The grammar (katcp-protocol §2)::

    LINE = TYPE NAME [ "[" MID "]" ] *( WS+ ARG ) *WS EOL

Arguments are always stored as ``bytes``; Python values given to the
constructors are encoded through the type registry. Parsing is built on
compiled regular expressions and ``bytes`` methods so that the common case
(no escapes) never loops over characters in Python.
"""

from __future__ import annotations

import enum
import re
from typing import Any, Dict, List, Optional, Tuple

from ._typeinfo import encode
from .exceptions import KatcpSyntaxError

__all__ = ["Message"]

_MAX_MID = 2**31 - 1
_MAX_MID_DIGITS = len(str(_MAX_MID))
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_HEAD_RE = re.compile(rb"([?!#])([A-Za-z][A-Za-z0-9-]*)(?:\[([1-9][0-9]*)\])?")
# Bytes in an argument section that rule out the bytes.split() fast path: escapes, bytes
# that are errors, and VT/FF (ordinary argument bytes that bytes.split() treats as spaces).
_CAREFUL_RE = re.compile(rb"[\\\0\x1b\x0b\x0c]")
_WS_RE = re.compile(rb"[ \t]+")
# A backslash not starting a valid escape, once every escaped backslash pair has been
# blanked out (see _first_problem); and a raw byte that must be escaped.
_BAD_ESCAPE_RE = re.compile(rb"\\(?:[^_0nret@]|\Z)")
_RAW_BAD_RE = re.compile(rb"[\0\x1b\n\r]")
# Bytes needing an escape, apart from the space used as a join separator in __bytes__.
_SPECIAL_NO_SPACE_RE = re.compile(rb"[\\\0\n\r\x1b\t]")
_SPECIAL_RE = re.compile(rb"[\\\0\n\r\x1b\t ]")


def _escape(arg: bytes) -> bytes:
    if not arg:
        return b"\\@"
    # Backslashes first, so the escapes added afterwards are not escaped again.
    return (
        arg.replace(b"\\", b"\\\\")
        .replace(b" ", b"\\_")
        .replace(b"\t", b"\\t")
        .replace(b"\n", b"\\n")
        .replace(b"\r", b"\\r")
        .replace(b"\0", b"\\0")
        .replace(b"\x1b", b"\\e")
    )


def _unescape_piece(piece: bytes) -> bytes:
    """Unescape text in which every backslash starts a one-character escape."""
    piece = piece.replace(b"\\_", b" ")  # by far the most common escape
    if b"\\" in piece:
        piece = (
            piece.replace(b"\\t", b"\t")
            .replace(b"\\n", b"\n")
            .replace(b"\\r", b"\r")
            .replace(b"\\0", b"\0")
            .replace(b"\\e", b"\x1b")
            .replace(b"\\@", b"")
        )
    return piece


def _unescape(arg: bytes) -> bytes:
    """Unescape an argument already validated by the line grammar.

    Splitting on escaped backslashes first leaves pieces in which every
    backslash starts a one-character escape, so plain ``bytes.replace``
    calls (no Python callback per escape) are exact.
    """
    if b"\\" not in arg:
        return arg
    if b"\\\\" not in arg:
        return _unescape_piece(arg)
    return b"\\".join([_unescape_piece(piece) for piece in arg.split(b"\\\\")])


class _MessageType(enum.IntEnum):
    REQUEST = 1
    REPLY = 2
    INFORM = 3


# 2.x's Message.Type is named MessageType (reprs show ``<MessageType.REQUEST: 1>``); the alias
# keeps pickles of its members resolvable.
_MessageType.__name__ = _MessageType.__qualname__ = "MessageType"
MessageType = _MessageType


_valid_names: Dict[str, bytes] = {}


def _check_name(name: str) -> bytes:
    """Validate a message name, returning its ASCII bytes (cached)."""
    raw = _valid_names.get(name)
    if raw is not None:
        return raw
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"name {name} is invalid")  # (aiokatcp 2.x's text)
    raw = name.encode("ascii")
    if len(_valid_names) < 10000:
        _valid_names[name] = raw
    return raw


def _check_mid(mid: Optional[int]) -> None:
    if mid is not None and not (isinstance(mid, int) and 1 <= mid <= _MAX_MID):
        raise ValueError(f"message ID {mid} is outside of range 1 to 2**31-1")  # (as in 2.x)


class Message:
    """One KATCP message.

    Parameters
    ----------
    mtype
        Request, reply or inform.
    name
        Message name, matching ``[A-Za-z][A-Za-z0-9-]*``.
    *arguments
        Argument values, each encoded with :func:`encode`; stored as ``bytes``.
    mid
        Message ID (1 to 2**31 - 1), or ``None``.

    Raises
    ------
    ValueError
        if `name` or `mid` is invalid
    TypeError
        if an argument's type is not registered
    """

    __slots__ = ["arguments", "mid", "mtype", "name"]

    Type = _MessageType
    OK = b"ok"
    FAIL = b"fail"
    INVALID = b"invalid"

    mtype: _MessageType
    name: str
    arguments: List[bytes]
    mid: Optional[int]

    def __init__(
        self, mtype: _MessageType, name: str, *arguments: Any, mid: Optional[int] = None
    ) -> None:
        if name not in _valid_names:
            _check_name(name)
        if mid is not None:
            _check_mid(mid)
        self.mtype = mtype if type(mtype) is _MessageType else _MessageType(mtype)
        self.name = name
        self.arguments = [arg if type(arg) is bytes else encode(arg) for arg in arguments]
        self.mid = mid

    @classmethod
    def request(cls, name: str, *arguments: Any, mid: Optional[int] = None) -> Message:
        """Build a request (``?name``)."""
        return cls(_MessageType.REQUEST, name, *arguments, mid=mid)

    @classmethod
    def reply(cls, name: str, *arguments: Any, mid: Optional[int] = None) -> Message:
        """Build a reply (``!name``)."""
        return cls(_MessageType.REPLY, name, *arguments, mid=mid)

    @classmethod
    def inform(cls, name: str, *arguments: Any, mid: Optional[int] = None) -> Message:
        """Build an inform (``#name``)."""
        return cls(_MessageType.INFORM, name, *arguments, mid=mid)

    @classmethod
    def reply_to_request(cls, msg: Message, *arguments: Any) -> Message:
        """Build a reply with the name and message ID of the request `msg`."""
        return cls(_MessageType.REPLY, msg.name, *arguments, mid=msg.mid)

    @classmethod
    def inform_reply(cls, msg: Message, *arguments: Any) -> Message:
        """Build a request inform with the name and message ID of the request `msg`."""
        return cls(_MessageType.INFORM, msg.name, *arguments, mid=msg.mid)

    @classmethod
    def _make(
        cls, mtype: _MessageType, name: str, arguments: List[bytes], mid: Optional[int]
    ) -> Message:
        """Build a message from already-validated parts (no checks, no encoding)."""
        msg = cls.__new__(cls)
        msg.mtype = mtype
        msg.name = name
        msg.arguments = arguments
        msg.mid = mid
        return msg

    @classmethod
    def escape_argument(cls, arg: bytes) -> bytes:
        """Escape one argument for the wire (an empty one becomes ``\\@``)."""
        return _escape(arg)

    @classmethod
    def unescape_argument(cls, arg: bytes) -> bytes:
        """Undo :meth:`escape_argument`.

        Raises
        ------
        KatcpSyntaxError
            for an unknown escape, a trailing backslash, or a raw byte that
            must be escaped
        """
        problem = _first_problem(arg, 0, separators=False)
        if problem is None and (b" " in arg or b"\t" in arg):
            problem = "malformed argument"
        if problem is not None:
            raise KatcpSyntaxError(problem, arg)
        return _unescape(arg)

    @classmethod
    def parse(cls, raw: bytes) -> Message:
        """Parse exactly one message from a line ending in ``\\n`` or ``\\r``.

        Raises
        ------
        KatcpSyntaxError
            if `raw` is not exactly one valid message
        """
        if not raw or raw[-1] not in b"\r\n":
            raise KatcpSyntaxError("message does not end with a newline", raw)
        line = raw[:-1]
        if b"\n" in line or b"\r" in line:
            raise KatcpSyntaxError("message contains an embedded newline", raw)
        msg = _parse_line(line)
        if msg is None:
            raise KatcpSyntaxError("line contains no message", raw)
        return msg

    def __bytes__(self) -> bytes:
        mid = self.mid
        name = self.name
        head = _TYPE_CHAR[self.mtype] + (_valid_names.get(name) or name.encode("ascii"))
        if mid is not None:
            head += b"[%d]" % mid
        return _format_line(head, self.arguments)

    def __repr__(self) -> str:
        args = "".join(f", {arg!r}" for arg in self.arguments)
        return f"Message(Message.Type.{self.mtype.name}, {self.name!r}{args}, mid={self.mid!r})"

    def __str__(self) -> str:
        return bytes(self)[:-1].decode("utf-8", errors="backslashreplace")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (
            self.mtype == other.mtype
            and self.name == other.name
            and self.arguments == other.arguments
            and self.mid == other.mid
        )

    __hash__ = None  # type: ignore[assignment]

    def copy(self) -> Message:
        """Return a copy whose argument list can be changed independently."""
        return Message._make(self.mtype, self.name, list(self.arguments), self.mid)

    __copy__ = copy

    def reply_ok(self) -> bool:
        """Whether this is a reply whose first argument is ``ok``."""
        return (
            self.mtype == _MessageType.REPLY and bool(self.arguments) and self.arguments[0] == b"ok"
        )


def request_bytes(name: str, mid: Optional[int], arguments: Tuple[Any, ...]) -> bytes:
    """``bytes(Message.request(name, *arguments, mid=mid))`` without making the message.

    The client's per-request path: same checks, encoding and errors as the
    constructor, and the same formatting as :meth:`Message.__bytes__`.
    """
    raw = _valid_names.get(name) or _check_name(name)
    if mid is None:
        head = b"?" + raw
    else:
        _check_mid(mid)
        head = b"?%s[%d]" % (raw, mid)
    return _format_line(head, [arg if type(arg) is bytes else encode(arg) for arg in arguments])


def reply_bytes(name: str, mid: Optional[int], arguments: List[bytes]) -> bytes:
    """``bytes(Message._make(REPLY, name, arguments, mid))`` without making the message.

    The server's per-request path; `arguments` are already encoded.
    """
    raw = _valid_names.get(name) or name.encode("ascii")
    return _format_line(b"!" + raw if mid is None else b"!%s[%d]" % (raw, mid), arguments)


def inform_bytes(name: str, mid: Optional[int], arguments: List[bytes]) -> bytes:
    """``bytes(Message._make(INFORM, name, arguments, mid))`` without making the message.

    For informs sent in bulk (request informs, ``#sensor-status``); `arguments` are
    already encoded.
    """
    raw = _valid_names.get(name) or name.encode("ascii")
    return _format_line(b"#" + raw if mid is None else b"#%s[%d]" % (raw, mid), arguments)


def is_plain_argument(arg: bytes) -> bool:
    """Whether `arg` goes on the wire as it is (not empty, nothing to escape)."""
    return bool(arg) and _SPECIAL_RE.search(arg) is None


def _format_line(head: bytes, args: List[bytes]) -> bytes:
    """The wire line for a message head (type, name, ID) and its argument bytes."""
    if not args:
        return head + b"\n"
    # Fast path: one join and one search cover every argument. A space inside an
    # argument shows up as an extra space in the joined line.
    joined = b" ".join(args)
    if (
        joined.count(b" ") == len(args) - 1
        and _SPECIAL_NO_SPACE_RE.search(joined) is None
        and all(args)
    ):
        return b"%s %s\n" % (head, joined)
    return b"%s %s\n" % (head, b" ".join([_escape(arg) for arg in args]))


_TYPE_CHAR = {_MessageType.REQUEST: b"?", _MessageType.REPLY: b"!", _MessageType.INFORM: b"#"}
_TYPE_FROM_CHAR = {
    ord("?"): _MessageType.REQUEST,
    ord("!"): _MessageType.REPLY,
    ord("#"): _MessageType.INFORM,
}
_names_from_bytes: Dict[bytes, str] = {}


def _parse_line(line: bytes) -> Optional[Message]:
    """Parse one line without its EOL; ``None`` for a blank line.

    The common case costs one regex match for the type, name and ID, one
    search for bytes that need care, and one ``bytes.split``.

    Raises
    ------
    KatcpSyntaxError
        saying what is wrong with the line
    """
    match = _HEAD_RE.match(line)
    if match is None:
        if not line.strip(b" \t"):
            return None
        raise KatcpSyntaxError(_describe_bad_line(line), line)
    raw_name, raw_mid = match.group(2, 3)
    mid: Optional[int] = None
    if raw_mid is not None:
        # Check the length before int(): Python refuses to convert more than 4300 digits
        # (a bare ValueError), and a long ID costs quadratic time to convert.
        if len(raw_mid) > _MAX_MID_DIGITS:
            message = f"message ID of {len(raw_mid)} digits is out of range (1 to {_MAX_MID})"
            raise KatcpSyntaxError(message, line)
        mid = int(raw_mid)
        if mid > _MAX_MID:
            message = f"message ID {raw_mid.decode()} is out of range (1 to {_MAX_MID})"
            raise KatcpSyntaxError(message, line)
    try:
        name = _names_from_bytes[raw_name]
    except KeyError:
        name = raw_name.decode("ascii")
        if len(_names_from_bytes) < 10000:
            _names_from_bytes[raw_name] = name
    end = match.end()
    if end == len(line):
        arguments: List[bytes] = []
    else:
        rest = line[end:]
        if rest[0] not in b" \t" or _CAREFUL_RE.search(rest) is not None:
            arguments = _parse_careful_arguments(line, end)
        else:
            arguments = rest.split()
    return Message._make(_TYPE_FROM_CHAR[line[0]], name, arguments, mid)


def _parse_careful_arguments(line: bytes, start: int) -> List[bytes]:
    """Arguments that contain escapes or bytes :meth:`bytes.split` would mishandle."""
    rest = line[start:]
    if rest[0] not in b" \t" or b"\0" in rest or b"\x1b" in rest:
        raise KatcpSyntaxError(_describe_bad_line(line), line)
    # Every backslash must start one of the eight escapes: checked in C, without a
    # per-escape object (see _first_problem).
    if b"\\" in rest and _BAD_ESCAPE_RE.search(rest.replace(b"\\\\", b"__")) is not None:
        raise KatcpSyntaxError(_describe_bad_line(line), line)
    if b"\x0b" in rest or b"\x0c" in rest:
        rest = rest.strip(b" \t")
        arguments = _WS_RE.split(rest) if rest else []
    else:
        arguments = rest.split()
    return [_unescape(arg) for arg in arguments]


def _first_problem(text: bytes, offset: int, separators: bool) -> Optional[str]:
    """Describe the first bad escape or unescaped byte in `text` (``None`` if none).

    Linear and in C whatever the input (a 16 MiB line costs milliseconds): escaped
    backslash pairs are blanked with one ``bytes.replace`` (it pairs them from the left,
    as the grammar does, and keeps positions), then two regex searches find the first
    stray backslash and the first raw byte that needs an escape. With `separators`,
    `text` is a line's argument section and a backslash before a space or tab ends its
    argument.
    """
    esc = _BAD_ESCAPE_RE.search(text.replace(b"\\\\", b"__"))
    raw = _RAW_BAD_RE.search(text)
    if esc is not None and (raw is None or esc.start() <= raw.start()):
        pos = esc.start()
        nxt = text[pos + 1 : pos + 2]
        if not nxt or (separators and nxt in b" \t"):
            return f"backslash at end of argument (position {offset + pos + 1})"
        return f"invalid escape {text[pos : pos + 2]!r} at position {offset + pos + 1}"
    if raw is not None:
        pos = raw.start()
        return f"unescaped byte {text[pos : pos + 1]!r} at position {offset + pos + 1}"
    return None


def _describe_bad_line(line: bytes) -> str:
    """Explain, for a human, why `line` is not a valid message (slow path only)."""
    if line[:1] not in (b"?", b"!", b"#"):
        return f"message must start with '?', '!' or '#', not {line[:1]!r}"
    name_match = re.match(rb"[A-Za-z][A-Za-z0-9-]*", line[1:])
    if name_match is None:
        return "missing or invalid message name (must start with a letter)"
    pos = 1 + name_match.end()
    if line[pos : pos + 1] == b"[":
        mid_match = re.match(rb"\[([1-9][0-9]*)\]", line[pos:])
        if mid_match is None:
            return f"invalid message ID at position {pos + 1} (expected [1] to [{_MAX_MID}])"
        pos += mid_match.end()
    if pos < len(line) and line[pos : pos + 1] not in b" \t":
        return f"unexpected character {line[pos : pos + 1]!r} at position {pos + 1}"
    return _first_problem(line[pos:], pos, separators=True) or "malformed message"
