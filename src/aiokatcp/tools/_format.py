"""How katcpcmd shows messages: human text, aligned tables, JSON, or wire format.

Pure (no I/O, no asyncio): every function takes messages and returns text, so
the output formats are tested with literal inputs. katcpcmd only writes the
strings.
"""

from __future__ import annotations

import datetime
import json
import operator
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from aiokatcp.core import Message

__all__ = [
    "TABLE_REQUESTS",
    "Condition",
    "Style",
    "format_human",
    "format_json",
    "format_raw",
    "format_table",
    "parse_condition",
    "render_watch_table",
    "text",
]

#: Requests whose informs are shown as one aligned table (collected until the reply).
TABLE_REQUESTS = frozenset({"help", "sensor-list", "sensor-value"})

_STATUS_COLOURS = {
    "nominal": "32",  # green
    "warn": "33",  # yellow
    "error": "31",  # red
    "failure": "1;31",  # bold red
    "unreachable": "35",  # magenta
    "unknown": "2",  # dim
    "inactive": "2",
}
_LOG_COLOURS = {"fatal": "1;31", "error": "31", "warn": "33", "debug": "2", "trace": "2"}
_REPLY_COLOURS = {"ok": "32", "fail": "31", "invalid": "31"}
_SAFE_WORD = re.compile(r"[^\s'\"\\]+")


class Style:
    """Whether to colour words (only when writing to a terminal)."""

    def __init__(self, colour: bool = False) -> None:
        self.colour = colour

    def paint(self, word: str, code: Optional[str]) -> str:
        if not self.colour or code is None:
            return word
        return f"\x1b[{code}m{word}\x1b[0m"

    def status(self, word: str) -> str:
        """A sensor status word, coloured by severity."""
        return self.paint(word, _STATUS_COLOURS.get(word))

    def reply_code(self, word: str) -> str:
        return self.paint(word, _REPLY_COLOURS.get(word, "31"))


def text(arg: bytes) -> str:
    """An argument as text (invalid UTF-8 shown as ``\\xNN``)."""
    return arg.decode("utf-8", errors="backslashreplace")


def _quote(arg: bytes) -> str:
    """An argument for a human: as is, or in quotes if it is empty or has blanks."""
    s = text(arg)
    if _SAFE_WORD.fullmatch(s):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def format_raw(msg: Message) -> str:
    """The message in wire format (escaped, with its message id), without the newline."""
    return text(bytes(msg)).rstrip("\n")


def format_json(msg: Message, device: Optional[str] = None) -> str:
    """One JSON object for the message (arguments as text)."""
    obj: Dict[str, object] = {
        "type": {Message.Type.REQUEST: "request", Message.Type.REPLY: "reply"}.get(
            msg.mtype, "inform"
        ),
        "name": msg.name,
        "mid": msg.mid,
        "arguments": [text(a) for a in msg.arguments],
    }
    if device is not None:
        obj["device"] = device
    return json.dumps(obj)


def _timestamp(arg: bytes) -> str:
    """A KATCP timestamp (seconds since the epoch) as UTC ISO 8601, else as given."""
    try:
        when = datetime.datetime.fromtimestamp(float(arg), datetime.timezone.utc)
    except (ValueError, OverflowError, OSError):
        return text(arg)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def format_human(msg: Message, style: Style) -> str:
    """One message for a human: unescaped arguments, status words, readable times."""
    args = msg.arguments
    if msg.mtype == Message.Type.REPLY:
        if not args:
            return f"!{msg.name}"
        head = f"!{msg.name} {style.reply_code(text(args[0]))}"
        rest = args[1:]
        if args[0] != b"ok" and len(rest) == 1:
            return f"{head} {text(rest[0])}"  # the failure message, unquoted
        return " ".join([head, *(_quote(a) for a in rest)])
    if msg.name == "log" and len(args) >= 4:
        level, when, source = text(args[0]), _timestamp(args[1]), text(args[2])
        message = " ".join(text(a) for a in args[3:])
        return f"{when} {style.paint(level, _LOG_COLOURS.get(level))} {source}: {message}"
    if msg.name == "sensor-status" and len(args) >= 5:
        when = _timestamp(args[0])
        parts = [when]
        rest = args[2:]
        while len(rest) >= 3:
            name, status, value = rest[:3]
            parts += [text(name), style.status(text(status)), _quote(value)]
            rest = rest[3:]
        return " ".join(parts)
    return " ".join([f"#{msg.name}", *(_quote(a) for a in args)])


def _table_rows(name: str, informs: Sequence[Message], style: Style) -> List[List[str]]:
    rows: List[List[str]] = []
    for inform in informs:
        args = inform.arguments
        if name == "help" and args:
            rows.append([text(args[0]), " ".join(text(a) for a in args[1:])])
        elif name == "sensor-list" and len(args) >= 4:
            extra = " ".join(text(a) for a in args[4:])
            rows.append([text(args[0]), text(args[3]), text(args[2]), text(args[1]), extra])
        elif name == "sensor-value" and len(args) >= 5:
            rows.append(
                [text(args[2]), style.status(text(args[3])), text(args[4]), _timestamp(args[0])]
            )
        else:
            rows.append([format_human(inform, style)])
    return rows


_HEADERS = {
    "help": ["REQUEST", "DESCRIPTION"],
    "sensor-list": ["NAME", "TYPE", "UNITS", "DESCRIPTION", "PARAMETERS"],
    "sensor-value": ["NAME", "STATUS", "VALUE", "TIMESTAMP"],
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _align(rows: Sequence[Sequence[str]]) -> List[str]:
    """Columns padded to their widest cell (colour codes do not count); no trailing blanks."""
    widths: List[int] = []
    for row in rows:
        for i, cell in enumerate(row):
            width = len(_ANSI.sub("", cell))
            if i == len(widths):
                widths.append(width)
            else:
                widths[i] = max(widths[i], width)
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            pad = widths[i] - len(_ANSI.sub("", cell)) if i < len(row) - 1 else 0
            cells.append(cell + " " * pad)
        lines.append("  ".join(cells).rstrip())
    return lines


def format_table(name: str, informs: Sequence[Message], style: Style) -> List[str]:
    """The informs of ``?help``, ``?sensor-list`` or ``?sensor-value`` as aligned lines."""
    rows = _table_rows(name, informs, style)
    if not rows:
        return []
    if all(len(row) == len(_HEADERS[name]) for row in rows):
        header = _HEADERS[name]
        if name == "sensor-list" and all(not row[-1] for row in rows):
            header = header[:-1]
            rows = [row[:-1] for row in rows]
        rows = [header, *rows]
    return _align(rows)


def render_watch_table(
    readings: Dict[str, Tuple[bytes, bytes, bytes]], style: Style, title: str = ""
) -> List[str]:
    """The live ``watch`` table: one row per sensor (name -> (timestamp, status, value))."""
    rows = [["NAME", "STATUS", "VALUE", "TIMESTAMP"]]
    for name in sorted(readings):
        when, status, value = readings[name]
        rows.append([name, style.status(text(status)), text(value), _timestamp(when)])
    lines = _align(rows)
    return [title, *lines] if title else lines


# -- wait conditions ---------------------------------------------------------------------

_OPS: Dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_EXPR = re.compile(r"\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*")


class Condition:
    """What ``katcpcmd wait`` waits for: a value, a status, or a numeric comparison."""

    def __init__(
        self,
        value: Optional[str] = None,
        status: Optional[str] = None,
        expr: Optional[Tuple[str, float]] = None,
    ) -> None:
        self.value = value
        self.status = status
        self.expr = expr

    def __repr__(self) -> str:
        parts = []
        if self.value is not None:
            parts.append(f"value {self.value}")
        if self.status is not None:
            parts.append(f"status {self.status}")
        if self.expr is not None:
            parts.append(f"value {self.expr[0]} {self.expr[1]:g}")
        return " and ".join(parts)

    def met(self, status: bytes, value: bytes) -> bool:
        """Whether a reading (status word and value, as on the wire) meets the condition."""
        if self.status is not None and text(status) != self.status:
            return False
        if self.value is not None and not _same_value(text(value), self.value):
            return False
        if self.expr is not None:
            try:
                number = float(value)
            except ValueError:
                return False
            op, bound = self.expr
            if not _OPS[op](number, bound):
                return False
        return True


def _same_value(actual: str, wanted: str) -> bool:
    if actual == wanted:
        return True
    try:
        return float(actual) == float(wanted)
    except ValueError:
        return False


def parse_condition(expr: str) -> Tuple[str, float]:
    """Parse ``OP NUMBER`` (``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``), e.g. ``'>=20.5'``.

    Raises
    ------
    ValueError
        naming what is wrong
    """
    match = _EXPR.fullmatch(expr)
    if match is None:
        raise ValueError(f"expected OP NUMBER with OP one of < <= > >= == !=, not {expr!r}")
    try:
        bound = float(match.group(2))
    except ValueError:
        raise ValueError(f"{match.group(2)!r} is not a number") from None
    return match.group(1), bound
