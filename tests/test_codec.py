"""Incremental parsing: chunking, line endings, limits, recovery."""

from __future__ import annotations

import tracemalloc
from typing import List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiokatcp._codec import DEFAULT_LIMIT, ParseResult
from aiokatcp.core import KatcpSyntaxError, Message, MessageParser, encode_messages
from helpers import messages


def _describe(results: List[ParseResult]) -> List[object]:
    return [r if isinstance(r, Message) else ("error", str(r)) for r in results]


def _feed_all(parser: MessageParser, chunks: List[bytes]) -> List[ParseResult]:
    out: List[ParseResult] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out


def test_line_endings_and_blank_lines() -> None:
    parser = MessageParser()
    out = parser.feed(b"?a\r\n?b\r#c\n\n  \t \n!d ok\n")
    assert out == [
        Message.request("a"),
        Message.request("b"),
        Message.inform("c"),
        Message.reply("d", b"ok"),
    ]


def test_partial_lines() -> None:
    parser = MessageParser()
    assert parser.feed(b"?wat") == []
    assert parser.buffered == 4
    assert parser.feed(b"chdog[1") == []
    assert parser.feed(b"]\n?x") == [Message.request("watchdog", mid=1)]
    assert parser.feed(b"\n") == [Message.request("x")]
    assert parser.buffered == 0


def test_bad_line_does_not_lose_neighbours() -> None:
    parser = MessageParser()
    out = parser.feed(b"?a\n$bad\n?b \\q\n?c\n")
    assert out[0] == Message.request("a")
    assert isinstance(out[1], KatcpSyntaxError)
    assert "must start with" in str(out[1])
    assert out[1].raw == b"$bad"
    assert isinstance(out[2], KatcpSyntaxError)
    assert "invalid escape" in str(out[2])
    assert out[3] == Message.request("c")


def test_limit_counts_eol() -> None:
    parser = MessageParser(limit=5)
    assert parser.feed(b"?abc\n") == [Message.request("abc")]
    out = parser.feed(b"?abcd\n?ab\n")
    assert isinstance(out[0], KatcpSyntaxError)
    assert "too long" in str(out[0])
    assert out[1] == Message.request("ab")


def test_long_line_is_not_buffered() -> None:
    parser = MessageParser(limit=100)
    assert parser.feed(b"?x " + b"a" * 200) == []
    assert parser.buffered == 0
    for _ in range(100):
        assert parser.feed(b"b" * 1000) == []
        assert parser.buffered == 0
    out = parser.feed(b"bbb\n?next\n")
    assert len(out) == 2
    assert isinstance(out[0], KatcpSyntaxError)
    assert "line too long (limit is 100 bytes)" in str(out[0])
    assert out[1] == Message.request("next")


def test_long_line_split_at_limit() -> None:
    parser = MessageParser(limit=10)
    assert parser.feed(b"?123456789") == []  # exactly at the limit with no EOL yet: too long
    out = parser.feed(b"\n?ok\n")
    assert isinstance(out[0], KatcpSyntaxError)
    assert out[1] == Message.request("ok")


def test_feed_eof() -> None:
    parser = MessageParser()
    parser.feed(b"?a\n?partial")
    out = parser.feed_eof()
    assert len(out) == 1
    assert isinstance(out[0], KatcpSyntaxError)
    assert "middle of a line" in str(out[0])
    assert parser.feed_eof() == []
    parser.feed(b"  ")
    assert parser.feed_eof() == []


def test_bad_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        MessageParser(limit=1)


def test_encode_messages() -> None:
    msgs = [Message.request("a", mid=1), Message.inform("b", b"x y")]
    assert encode_messages(msgs) == b"?a[1]\n#b x\\_y\n"


_messages = messages(max_args=4, max_arg_size=12)


def _chunked(data: bytes, cuts: List[int]) -> List[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = []
    prev = 0
    for point in [*points, len(data)]:
        pieces.append(data[prev:point])
        prev = point
    return pieces


@given(st.lists(_messages, max_size=8), st.lists(st.integers(0, 10_000), max_size=10))
def test_round_trip_any_chunking(msgs: List[Message], cuts: List[int]) -> None:
    data = encode_messages(msgs)
    parser = MessageParser()
    assert _feed_all(parser, _chunked(data, cuts)) == msgs
    assert parser.buffered == 0


@given(
    st.binary(max_size=200),
    st.lists(st.integers(0, 10_000), max_size=10),
    st.integers(2, 64),
)
def test_arbitrary_input_never_raises(data: bytes, cuts: List[int], limit: int) -> None:
    whole = MessageParser(limit)
    expected = _describe(whole.feed(data)) + _describe(whole.feed_eof())
    parser = MessageParser(limit)
    out = _feed_all(parser, _chunked(data, cuts)) + parser.feed_eof()
    assert all(isinstance(r, (Message, KatcpSyntaxError)) for r in out)
    # Chunking never changes what comes out.
    assert _describe(out) == expected
    assert parser.buffered < limit


@given(st.lists(st.one_of(_messages, st.binary(max_size=30)), max_size=8))
def test_good_lines_survive_garbage(items: List[object]) -> None:
    data = b""
    good = []
    for item in items:
        if isinstance(item, Message):
            data += bytes(item)
            good.append(item)
        else:
            data += bytes(item).replace(b"\n", b"").replace(b"\r", b"") + b"\n"
    out = MessageParser().feed(data)
    msgs = [r for r in out if isinstance(r, Message)]
    # Every real message comes through, in order (garbage lines may happen to parse too).
    it = iter(msgs)
    assert all(any(m == g for m in it) for g in good)


@pytest.mark.parametrize("digits", [11, 4301, 10_000])
def test_huge_message_id_is_an_error_of_that_line_only(digits: int) -> None:
    parser = MessageParser()
    out = parser.feed(b"?a[1]\n?x[" + b"9" * digits + b"] arg\n?b[2]\n")
    assert out[0] == Message.request("a", mid=1)
    assert isinstance(out[1], KatcpSyntaxError)
    assert f"message ID of {digits} digits is out of range" in str(out[1])
    assert out[2] == Message.request("b", mid=2)


def _peak_while_feeding(parser: MessageParser, chunks: List[bytes]) -> int:
    """Peak bytes allocated (tracemalloc) while `chunks` are fed, chunks themselves excluded."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        for chunk in chunks:
            assert parser.feed(chunk) == []
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_trickled_line_is_not_recopied_per_chunk() -> None:
    # 2 MiB of one line in 1 KiB pieces: the old parser built partial + chunk for every
    # piece (quadratic copying, peak of two copies of the partial line); now each piece is
    # appended to one buffer.
    size = 2 * 1024**2
    chunks = [bytes([97 + i % 26]) * 1024 for i in range(size // 1024)]
    chunks[0] = b"?echo " + chunks[0][6:]
    parser = MessageParser()
    peak = _peak_while_feeding(parser, chunks)
    assert parser.buffered == size
    assert peak < 1.4 * size
    (msg,) = parser.feed(b" end\n")
    assert isinstance(msg, Message)
    assert msg.arguments[0] == b"".join(chunks)[6:]
    assert msg.arguments[1] == b"end"
    assert parser.buffered == 0


def test_over_long_trickled_line_is_dropped_as_it_arrives() -> None:
    limit = 64 * 1024
    chunks = [b"?x "] + [bytes([97 + i % 26]) * 1000 for i in range(1000)]
    parser = MessageParser(limit)
    peak = _peak_while_feeding(parser, chunks)
    assert parser.buffered == 0
    assert peak < 2 * limit
    out = parser.feed(b"tail\r?ok\n")
    assert len(out) == 2
    assert isinstance(out[0], KatcpSyntaxError)
    assert str(out[0]) == f"line too long (limit is {limit} bytes)"
    assert out[1] == Message.request("ok")
    assert parser.feed_eof() == []


def test_partial_line_then_chunk_with_many_lines() -> None:
    parser = MessageParser(limit=10)
    assert parser.feed(b"?ab") == []
    assert parser.feed(b"c") == []
    out = parser.feed(b"d\n?e\r\n?12345678901\n?f")
    assert out[:2] == [Message.request("abcd"), Message.request("e")]
    assert isinstance(out[2], KatcpSyntaxError)
    assert parser.buffered == 2
    assert parser.feed(b"\n") == [Message.request("f")]


# Pieces of the grammar (and of its edge cases) that random bytes almost never hit.
_FRAGMENTS = [
    b"?",
    b"!",
    b"#",
    b"sensor-value",
    b"x",
    b"[",
    b"]",
    b"1",
    b"0",
    b"2147483648",
    b"9" * 11,
    b"9" * 5000,
    b" ",
    b"\t",
    b"\\",
    b"\\_",
    b"\\@",
    b"\\q",
    b"\r",
    b"\n",
    b"\0",
    b"\x1b",
    b"\x0b",
    b"\xff",
    b"ok",
]


@given(
    st.lists(st.sampled_from(_FRAGMENTS), max_size=40),
    st.lists(st.integers(0, 20_000), max_size=10),
    st.sampled_from([2, 16, 64, 6000, DEFAULT_LIMIT]),
)
def test_fuzz_grammar_fragments(pieces: List[bytes], cuts: List[int], limit: int) -> None:
    data = b"".join(pieces)
    whole = MessageParser(limit)
    expected = whole.feed(data) + whole.feed_eof()
    parser = MessageParser(limit)
    out = _feed_all(parser, _chunked(data, cuts))
    assert parser.buffered < limit
    out += parser.feed_eof()
    assert _describe(out) == _describe(expected)
    for result in out:
        if isinstance(result, Message):
            assert result.mid is None or 1 <= result.mid <= 2**31 - 1
            assert Message.parse(bytes(result)) == result
        else:
            assert isinstance(result, KatcpSyntaxError)
