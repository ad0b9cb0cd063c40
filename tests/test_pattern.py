"""Safe client-supplied sensor-name patterns (``?sensor-list /re/``)."""

from __future__ import annotations

import re
import time
from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiokatcp._pattern import (
    MAX_PATTERN_LENGTH,
    MAX_STATES,
    compile_sensor_pattern,
)
from aiokatcp.sensor import Sensor
from aiokatcp.server import DeviceServer
from aiokatcp.testing import ScriptedPeer, running

NAMES = [
    "device-status",
    "rx.temperature",
    "rx.l-band.lock",
    "dig.adc0.rms",
    "dig.adc1.rms",
    "sys.uptime",
    "anc.wind_speed",
    "ap.mode",
    "cbf.64k.enabled",
    "x",
]


@pytest.mark.parametrize(
    "pattern",
    [
        "rx",
        "^rx\\.",
        "rms$",
        "^sys\\.uptime$",
        "^dig\\.adc[0-9]\\.rms$",
        "a.c",
        "(rx|ap)\\.",
        "^(?:rx|dig)\\..*\\.(lock|rms)$",
        "(?P<group>adc)\\d",
        "[^a-z.]",
        "\\w+_\\w+",
        "\\W\\D\\S",
        "l-ba?nd",
        "d{1,2}",
        "^.{3}\\.",
        "e{2,}",
        "^x{,1}$",
        "c{",
        "c{}",
        "xc{,}",
        "[]a]",
        "[a-]x",
        "a*?b+?",
        "",
        "^",
        "$",
        "\\Arx",
        "\\x41|\\t",
        "[\\d.]{4}",
    ],
)
def test_same_answer_as_re_search(pattern: str) -> None:
    matcher = compile_sensor_pattern(pattern)
    assert [matcher(name) for name in NAMES] == [
        re.search(pattern, name) is not None for name in NAMES
    ]


_pieces = st.sampled_from(
    ["a", "b", ".", "[ab]", "[^a]", "\\.", "(a|b)", "(a|)", "(?:ab|b)", "^", "$", "\\d", "x"]
)
_quants = st.sampled_from(
    ["", "", "*", "+", "?", "{2}", "{1,3}", "{,2}", "{2,}", "*?", "{,}", "{}", "{"]
)


@st.composite
def _patterns(draw: st.DrawFn) -> str:
    parts = [draw(_pieces) + draw(_quants) for _ in range(draw(st.integers(0, 6)))]
    if draw(st.booleans()):
        split = draw(st.integers(0, len(parts)))
        return "".join(parts[:split]) + "|" + "".join(parts[split:])
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(_patterns(), st.lists(st.text("ab.1x", max_size=8), max_size=6))
def test_fuzz_same_answer_as_re_search(pattern: str, names: List[str]) -> None:
    try:
        re.compile(pattern)
    except re.error:
        with pytest.raises(ValueError):
            compile_sensor_pattern(pattern)
        return
    try:
        matcher = compile_sensor_pattern(pattern)
    except ValueError as exc:
        assert "repeated anchor" in str(exc)  # the one valid construct refused here
        return
    assert [matcher(n) for n in names] == [re.search(pattern, n) is not None for n in names]


def _names(count: int, length: int) -> List[str]:
    return [f"{i:04d}" + "abcdefghij.klmnopqrstuvwxyz"[: length - 4] for i in range(count)]


@pytest.mark.parametrize("count", [20, 2000])
def test_catastrophic_pattern_is_linear(count: int) -> None:
    # re.search("(.|.)*!", name) backtracks 2**len(name) times per name.
    names = _names(count, 20)
    matcher = compile_sensor_pattern("(.|.)*!")
    assert not any(matcher(name) for name in names)
    assert matcher("a" * 20 + "!")


@pytest.mark.parametrize(
    ("pattern", "equivalent"),
    [
        ("(.|.)*!", "!"),
        ("(a|aa)*b", "b"),
        ("(x+x+)+y", "xx+y"),
        ("^(\\w+\\s?)*$!", "$!"),
        ("(.*a){12}", "(a[^a]*){12}"),
        ("([a-z]|[a-z.])*\\d!", "\\d!"),
    ],
)
def test_hostile_patterns_are_answered_quickly(pattern: str, equivalent: str) -> None:
    # Patterns on which re.search backtracks exponentially, each with a harmless equivalent.
    names = [*_names(1000, 40), "a" * 40, "a" * 40 + "b", "1!", "xxxy", "a" * 13]
    matcher = compile_sensor_pattern(pattern)
    start = time.process_time()
    results = [matcher(name) for name in names]
    # A generous CPU bound so that the test cannot be flaky (re.search takes minutes).
    assert time.process_time() - start < 5
    assert results == [re.search(equivalent, n) is not None for n in names]


def test_budget_exhaustion_has_clear_error() -> None:
    # (a|b)*a(a|b){n}: an exponential DFA; fresh names keep building new states.
    matcher = compile_sensor_pattern("(a|b)*a(a|b){12}c", step_budget=5000)
    names = [format(i, "b").replace("0", "a").replace("1", "b") * 3 for i in range(4096)]
    with pytest.raises(ValueError, match=r"too much work.*more than 5000 automaton steps"):
        for name in names:
            matcher(name)


def test_cached_transitions_are_free() -> None:
    matcher = compile_sensor_pattern("^dig\\.adc[0-9]+\\.(rms|mean)$", step_budget=2000)
    names = [f"dig.adc{i}.rms" for i in range(50_000)]
    assert all(matcher(name) for name in names)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(a)\\1", "escape '\\\\1'"),
        ("(?=a)", "group construct '\\(\\?='"),
        ("(?<!a)b", "group construct '\\(\\?<'"),
        ("(?i)abc", "group construct '\\(\\?i'"),
        ("a\\b", "escape '\\\\b'"),
        ("[[:alpha:]]", "POSIX class"),
        ("(", "missing \\), unterminated subpattern"),
        ("*a", "nothing to repeat"),
        ("a" * (MAX_PATTERN_LENGTH + 1), "too long"),
        ("(ab{1000}){1000}", f"more than {MAX_STATES} automaton states"),
    ],
)
def test_refused_patterns(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_sensor_pattern(pattern)


def test_unsupported_message_lists_the_subset() -> None:
    with pytest.raises(ValueError, match="not supported in sensor patterns; supported: literals"):
        compile_sensor_pattern("(?=x)")


# -- through the server (SERVER-HOOK: the one call in the server's sensor selection) ---------


async def test_server_answers_hostile_regex_quickly() -> None:
    class Server(DeviceServer):
        VERSION = "test-api-1.0"
        BUILD_STATE = "test-1.0.0"

    server = Server("127.0.0.1", 0)
    for name in _names(20, 20):
        server.sensors.add(Sensor(int, name, "a sensor"))
    async with running(server):
        async with await ScriptedPeer.connect_to(server) as peer:
            await peer.expect_connect()
            start = time.process_time()
            # 2.x: re.search backtracks 2**20 times per name (seconds for 20 names).
            assert await peer.request(b"?sensor-list /(.|.)*!/") == [b"!sensor-list ok 0"]
            assert time.process_time() - start < 0.5
            lines = await peer.request(b"?sensor-value /(?=x)/")
            assert lines[0].startswith(b"!sensor-value fail invalid\\_regular\\_expression")
            assert b"not\\_supported\\_in\\_sensor\\_patterns" in lines[0]
            assert await peer.request(b"?sensor-list /^0019/") == [
                b"#sensor-list 0019abcdefghij.klmno a\\_sensor \\@ integer",
                b"!sensor-list ok 1",
            ]
