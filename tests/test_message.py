"""Message construction, escaping, single-line parsing and formatting."""

from __future__ import annotations

import copy
import enum
import tracemalloc
from typing import Any, List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiokatcp._message import inform_bytes, reply_bytes, request_bytes
from aiokatcp.core import KatcpSyntaxError, Message, Timestamp
from helpers import messages


class Mode(enum.Enum):
    IDLE = 1
    RUN_FAST = 2


class TestConstruction:
    def test_factories(self) -> None:
        assert Message.request("foo", 1, mid=3) == Message(Message.Type.REQUEST, "foo", b"1", mid=3)
        assert Message.reply("foo", "ok").mtype == Message.Type.REPLY
        assert Message.inform("foo").mtype == Message.Type.INFORM

    def test_arguments_encoded(self) -> None:
        msg = Message.inform("x", b"raw", "text", 3, 2.5, True, Mode.RUN_FAST, Timestamp(1.25))
        assert msg.arguments == [b"raw", b"text", b"3", b"2.5", b"1", b"run-fast", b"1.25"]

    def test_unregistered_argument(self) -> None:
        with pytest.raises(TypeError, match="not registered"):
            Message.request("x", object())

    def test_reply_to_request(self) -> None:
        req = Message.request("sensor-list", mid=7)
        expected = Message.reply("sensor-list", b"ok", b"2", mid=7)
        assert Message.reply_to_request(req, "ok", 2) == expected
        assert Message.inform_reply(req, "a") == Message.inform("sensor-list", b"a", mid=7)

    @pytest.mark.parametrize("name", ["foo", "a", "Foo-Bar9", "x-", "sensor-list"])
    def test_good_names(self, name: str) -> None:
        assert Message.request(name).name == name

    @pytest.mark.parametrize("name", ["", "1foo", "-foo", "fo_o", "foo bar", "caf\u00e9", "a.b"])
    def test_bad_names(self, name: str) -> None:
        with pytest.raises(ValueError, match=r"^name .* is invalid$"):
            Message.request(name)

    @pytest.mark.parametrize("mid", [1, 2**31 - 1])
    def test_good_mids(self, mid: int) -> None:
        assert Message.request("x", mid=mid).mid == mid

    @pytest.mark.parametrize("mid", [0, -1, 2**31, 1.5])
    def test_bad_mids(self, mid: int) -> None:
        with pytest.raises(ValueError, match=r"^message ID .* is outside of range 1 to 2\*\*31-1$"):
            Message.request("x", mid=mid)

    def test_equality_and_hash(self) -> None:
        a = Message.request("x", 1, mid=2)
        assert a == Message.request("x", b"1", mid=2)
        assert a != Message.request("x", b"1", mid=3)
        assert a != Message.request("x", b"2", mid=2)
        assert a != Message.inform("x", b"1", mid=2)
        assert a != Message.request("y", b"1", mid=2)
        assert a != "?x[2] 1"
        with pytest.raises(TypeError):
            hash(a)

    def test_repr(self) -> None:
        msg = Message.request("foo", b"a", mid=None)
        assert repr(msg) == "Message(Message.Type.REQUEST, 'foo', b'a', mid=None)"
        assert str(Message.reply("foo", "ok", mid=5)) == "!foo[5] ok"

    def test_copy(self) -> None:
        msg = Message.request("foo", b"a", mid=4)
        dup = copy.copy(msg)
        assert dup == msg
        dup.arguments.append(b"b")
        assert msg.arguments == [b"a"]
        assert msg.copy() == msg

    def test_reply_ok(self) -> None:
        assert Message.reply("x", "ok").reply_ok()
        assert not Message.reply("x", "fail", "no").reply_ok()
        assert not Message.reply("x").reply_ok()
        assert not Message.inform("x", "ok").reply_ok()

    def test_slots(self) -> None:
        with pytest.raises(AttributeError):
            Message.request("x").other = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        (b"\\", b"\\\\"),
        (b" ", b"\\_"),
        (b"\0", b"\\0"),
        (b"\n", b"\\n"),
        (b"\r", b"\\r"),
        (b"\x1b", b"\\e"),
        (b"\t", b"\\t"),
        (b"", b"\\@"),
        (b"@_[]\x7f\xff\x01", b"@_[]\x7f\xff\x01"),
        (b" a\tb\n\r\x00\x1b\\", b"\\_a\\tb\\n\\r\\0\\e\\\\"),
    ],
)
def test_escape_table(raw: bytes, escaped: bytes) -> None:
    assert Message.escape_argument(raw) == escaped
    assert Message.unescape_argument(escaped) == raw


def test_unescape_at_anywhere() -> None:
    assert Message.unescape_argument(b"a\\@b") == b"ab"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"\\x", "invalid escape"),
        (b"a\\", "backslash at end"),
        (b"a b", "unescaped byte|malformed"),
    ],
)
def test_unescape_errors(bad: bytes, message: str) -> None:
    with pytest.raises(KatcpSyntaxError, match=message):
        Message.unescape_argument(bad)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"?foo\n", Message.request("foo")),
        (b"?foo a  b\t\tc \t\n", Message.request("foo", b"a", b"b", b"c")),
        (b"?foo[1] x\n", Message.request("foo", b"x", mid=1)),
        (b"?foo [1]\n", Message.request("foo", b"[1]")),
        (b"!foo[2147483647] ok\r", Message.reply("foo", b"ok", mid=2147483647)),
        (b"#Foo-Bar9\n", Message.inform("Foo-Bar9")),
        (b"?foo \\@\n", Message.request("foo", b"")),
        (b"?foo a\\@b\n", Message.request("foo", b"ab")),
        (b"?foo a\x01b caf\xc3\xa9\n", Message.request("foo", b"a\x01b", b"caf\xc3\xa9")),
        (b"?test a\x0cb\x0bc\n", Message.request("test", b"a\x0cb\x0bc")),
        (b"?echo\t\t7   x  \n", Message.request("echo", b"7", b"x")),
        (b"#x[5] \\@\n", Message.inform("x", b"", mid=5)),
    ],
)
def test_parse_table(line: bytes, expected: Message) -> None:
    assert Message.parse(line) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"?foo[0]\n", "invalid message ID"),
        (b"?foo[01]\n", "invalid message ID"),
        (b"?foo[]\n", "invalid message ID"),
        (b"?foo[ 1]\n", "invalid message ID"),
        (b"?foo[1\n", "invalid message ID"),
        (b"?foo[2147483648]\n", "out of range"),
        (b"?foo[1]x\n", "unexpected character b'x' at position 8"),
        (b" ?foo\n", "must start with"),
        (b"$foo\n", "must start with"),
        (b"?\n", "invalid message name"),
        (b"?1foo\n", "invalid message name"),
        (b"?-foo\n", "invalid message name"),
        (b"?fo_o\n", "unexpected character b'_'"),
        (b"?foo\\@\n", "unexpected character"),
        (b"?foo \\x\n", r"invalid escape b'\\\\x' at position 6"),
        (b"?foo a\\\n", "backslash at end of argument"),
        (b"?foo a\0b\n", r"unescaped byte b'\\x00' at position 7"),
        (b"?foo a\x1bb\n", "unescaped byte"),
        (b"?foo\n?bar\n", "embedded newline"),
        (b"?foo", "does not end with a newline"),
        (b"", "does not end with a newline"),
        (b"   \n", "no message"),
    ],
)
def test_parse_errors(line: bytes, message: str) -> None:
    with pytest.raises(KatcpSyntaxError, match=message) as info:
        Message.parse(line)
    assert info.value.raw is not None


@pytest.mark.parametrize(
    ("msg", "wire"),
    [
        (Message.request("watchdog"), b"?watchdog\n"),
        (Message.request("watchdog", mid=17), b"?watchdog[17]\n"),
        (Message.reply("echo", b"ok", b"a b", b""), b"!echo ok a\\_b \\@\n"),
        (Message.inform("x", b"a\nb", b"c"), b"#x a\\nb c\n"),
        (Message.inform("x", b"", b""), b"#x \\@ \\@\n"),
        (Message.inform("x", b"\\"), b"#x \\\\\n"),
    ],
)
def test_format_table(msg: Message, wire: bytes) -> None:
    assert bytes(msg) == wire


_messages = messages(max_args=6, max_arg_size=20)


@given(_messages)
def test_format_parse_round_trip(msg: Message) -> None:
    wire = bytes(msg)
    assert wire.endswith(b"\n")
    assert wire.count(b"\n") == 1
    assert b"\r" not in wire
    assert Message.parse(wire) == msg


@given(st.binary(max_size=60))
def test_parse_only_raises_syntax_error(data: bytes) -> None:
    try:
        msg = Message.parse(data)
    except KatcpSyntaxError:
        return
    assert Message.parse(bytes(msg)) == msg


@given(st.binary(max_size=40))
def test_escape_round_trip(arg: bytes) -> None:
    escaped = Message.escape_argument(arg)
    assert Message.unescape_argument(escaped) == arg
    for special in (b" ", b"\t", b"\n", b"\r", b"\0", b"\x1b"):
        assert special not in escaped


@pytest.mark.parametrize(
    "args",
    [(), (b"",), (b"a b", 2.5, "x\ty", b"\\", b"\x1b\0"), (True, 3, b"plain"), ("µs",)],
)
@pytest.mark.parametrize("mid", [None, 7])
def test_request_bytes_matches_message(args: Tuple[Any, ...], mid: Optional[int]) -> None:
    """The client's shortcut formats exactly like ``bytes(Message.request(...))``."""
    assert request_bytes("x-y", mid, args) == bytes(Message.request("x-y", *args, mid=mid))


@pytest.mark.parametrize(("name", "mid"), [("1x", None), ("x", 0), ("x", 2**31)])
def test_request_bytes_rejects_like_message(name: str, mid: Optional[int]) -> None:
    with pytest.raises(ValueError):
        request_bytes(name, mid, ())


@pytest.mark.parametrize(
    ("mid", "text"),
    [
        (b"2147483648", "message ID 2147483648 is out of range"),
        (b"9" * 11, "message ID of 11 digits is out of range"),
        (b"9" * 5000, "message ID of 5000 digits is out of range"),
    ],
)
def test_parse_out_of_range_mid(mid: bytes, text: str) -> None:
    with pytest.raises(KatcpSyntaxError, match=text):
        Message.parse(b"!x[" + mid + b"] ok\n")


@pytest.mark.parametrize(
    ("arg", "text"),
    [
        (b"a" * 2**20 + b"\\q", r"invalid escape b'\\q' at position 1048580"),
        (b"\\_" * 2**19 + b"\\", "backslash at end of argument (position 1048580)"),
        (b"a\\\\" * 2**18 + b"\0", r"unescaped byte b'\x00' at position 786436"),
    ],
)
def test_describing_a_long_bad_line_is_linear(arg: bytes, text: str) -> None:
    # The old description walked each byte in Python and matched each argument with a
    # regex whose repeated group keeps state per byte (hundreds of MiB for a 16 MiB line);
    # the escape check made a list of every escape (about 50 bytes each).
    line = b"?x " + arg + b"\n"
    tracemalloc.start()
    try:
        with pytest.raises(KatcpSyntaxError) as info:
            Message.parse(line)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(info.value) == text
    assert peak < 8 * len(line)


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"?x a\\ b", "backslash at end of argument (position 5)"),
        (b"?x a\\\tb", "backslash at end of argument (position 5)"),
        (b"?x a\\\\\\ b", "backslash at end of argument (position 7)"),
        (b"?x a\\\\ \\w", r"invalid escape b'\\w' at position 8"),
        (b"?x \\\x1b", r"invalid escape b'\\\x1b' at position 4"),
        (b"?x ok \x1b\\q", r"unescaped byte b'\x1b' at position 7"),
    ],
)
def test_first_problem_in_line(line: bytes, text: str) -> None:
    with pytest.raises(KatcpSyntaxError) as info:
        Message.parse(line + b"\n")
    assert str(info.value) == text


@pytest.mark.parametrize(
    ("arg", "text"),
    [(b"a\\ b", r"invalid escape b'\\ ' at position 2"), (b"a b", "malformed argument")],
)
def test_unescape_argument_first_problem(arg: bytes, text: str) -> None:
    with pytest.raises(KatcpSyntaxError) as info:
        Message.unescape_argument(arg)
    assert str(info.value) == text


@pytest.mark.parametrize(
    "args",
    [[], [b"ok"], [b"ok", b"a b", b""], [b"\\", b"\t\n\r\0\x1b", b"x"], [b"fail", b"c:\\ d"]],
)
@pytest.mark.parametrize("mid", [None, 1, 2**31 - 1])
@pytest.mark.parametrize("name", ["x-y", "sensor-status"])
def test_reply_and_inform_bytes_match_message(
    args: List[bytes], mid: Optional[int], name: str
) -> None:
    # The server's formatting shortcut writes exactly what the Message would.
    assert reply_bytes(name, mid, args) == bytes(Message.reply(name, *args, mid=mid))
    assert inform_bytes(name, mid, args) == bytes(Message.inform(name, *args, mid=mid))
