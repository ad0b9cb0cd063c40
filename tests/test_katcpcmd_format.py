"""katcpcmd's output formats (aiokatcp.tools._format), with literal messages."""

from __future__ import annotations

import pytest

from aiokatcp.core import Message
from aiokatcp.tools import _format
from aiokatcp.tools._format import Condition, Style

PLAIN = Style(False)
COLOUR = Style(True)


def test_colour_only_when_asked() -> None:
    reply = Message.reply("x", "ok", mid=3)
    assert _format.format_human(reply, PLAIN) == "!x ok"
    assert _format.format_human(reply, COLOUR) == "!x \x1b[32mok\x1b[0m"
    status = Message.inform("sensor-status", b"1700000000", 1, "a.b", "error", 5)
    assert _format.format_human(status, COLOUR) == (
        "2023-11-14 22:13:20.000Z a.b \x1b[31merror\x1b[0m 5"
    )


def test_human_quotes_only_when_needed() -> None:
    msg = Message.inform("x", b"plain", b"two words", b"", b"it's", b"\xff")
    assert _format.format_human(msg, PLAIN) == "#x plain 'two words' '' 'it\\'s' '\\\\xff'"


def test_raw_and_json() -> None:
    msg = Message.reply("x", "ok", "a b", mid=7)
    assert _format.format_raw(msg) == "!x[7] ok a\\_b"
    assert _format.format_json(msg, "h:1") == (
        '{"type": "reply", "name": "x", "mid": 7, "arguments": ["ok", "a b"], "device": "h:1"}'
    )


def test_table_alignment_ignores_colour_codes() -> None:
    informs = [
        Message.inform("sensor-value", b"1700000000", 1, "long.sensor.name", "nominal", 1),
        Message.inform("sensor-value", b"1700000000", 1, "s", "warn", 22),
    ]
    plain = _format.format_table("sensor-value", informs, PLAIN)
    coloured = _format.format_table("sensor-value", informs, COLOUR)
    strip = [_format._ANSI.sub("", line) for line in coloured]
    assert strip == plain
    assert plain == [
        "NAME              STATUS   VALUE  TIMESTAMP",
        "long.sensor.name  nominal  1      2023-11-14 22:13:20.000Z",
        "s                 warn     22     2023-11-14 22:13:20.000Z",
    ]


def test_malformed_informs_in_a_table_fall_back_to_lines() -> None:
    informs = [Message.inform("sensor-list", "only-a-name")]
    assert _format.format_table("sensor-list", informs, PLAIN) == ["#sensor-list only-a-name"]


def test_watch_table_sorted() -> None:
    readings = {"b": (b"1700000000", b"warn", b"2"), "a": (b"bad-time", b"nominal", b"1")}
    assert _format.render_watch_table(readings, PLAIN, "title") == [
        "title",
        "NAME  STATUS   VALUE  TIMESTAMP",
        "a     nominal  1      bad-time",
        "b     warn     2      2023-11-14 22:13:20.000Z",
    ]


@pytest.mark.parametrize(
    ("condition", "status", "value", "met"),
    [
        (Condition("3"), b"nominal", b"3.0", True),
        (Condition("on"), b"nominal", b"off", False),
        (Condition(status="warn"), b"warn", b"x", True),
        (Condition("3", status="warn"), b"nominal", b"3", False),
        (Condition(expr=(">=", 2.5)), b"nominal", b"2.5", True),
        (Condition(expr=("<", 0.0)), b"nominal", b"abc", False),
    ],
)
def test_condition(condition: Condition, status: bytes, value: bytes, met: bool) -> None:
    assert condition.met(status, value) is met


def test_parse_condition() -> None:
    assert _format.parse_condition(" >= 20.5 ") == (">=", 20.5)
    assert _format.parse_condition("!=1") == ("!=", 1.0)
    with pytest.raises(ValueError, match="expected OP NUMBER"):
        _format.parse_condition("about 3")
    with pytest.raises(ValueError, match="not a number"):
        _format.parse_condition("< three")
