"""The v4 dialect conversions and gates, checked byte for byte against katcp-python 0.9.3.

The transcripts in ``tests/data/katcp_v4_server_v*.txt`` were recorded from
katcp-python 0.9.3's own v4 and v5 servers (see ``tests/data/README_katcp_v4.rst``).
Here each v5 line (seconds), converted with :func:`to_wire`, must give the
exact v4 line katcp-python sent, and each v4 request, converted with
:func:`from_wire`, must give the v5 request.
"""

from __future__ import annotations

import pathlib
from typing import Dict, List, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiokatcp import Message, ProtocolFlags
from aiokatcp._dialect import (
    ASSUMED_PROTOCOL,
    bulk_sampling_error,
    convert_seconds,
    decode_time,
    encode_time,
    from_wire,
    reply_mid,
    request_available,
    sends_version_connect,
    strategy_allowed,
    strategy_error,
    timestamp_sensor_name,
    to_wire,
    uses_milliseconds,
    v4_connect_informs,
)

DATA = pathlib.Path(__file__).parent / "data"
V4 = ProtocolFlags(4, 0, "M")
V5 = ProtocolFlags(5, 1, "MIBT")
AIO = ProtocolFlags(5, 1, "MIB")

Transcript = Dict[str, List[Tuple[str, bytes]]]


def load(name: str) -> Transcript:
    """Scenario name -> [(">>>" or "<<<", line)]."""
    scenarios: Transcript = {}
    current: List[Tuple[str, bytes]] = []
    for line in (DATA / name).read_bytes().splitlines():
        if line.startswith(b"# scenario: "):
            current = scenarios.setdefault(line[12:].decode(), [])
        elif line.startswith((b">>> ", b"<<< ")):
            current.append((line[:3].decode(), line[4:]))
    return scenarios


@pytest.fixture(scope="module")
def v4() -> Transcript:
    return load("katcp_v4_server_v4.txt")


@pytest.fixture(scope="module")
def v5() -> Transcript:
    return load("katcp_v4_server_v5.txt")


def received(scenario: List[Tuple[str, bytes]]) -> List[bytes]:
    return [line for direction, line in scenario if direction == "<<<"]


def parse(line: bytes) -> Message:
    return Message.parse(line + b"\n")


def is_ts(name: bytes) -> bool:
    return name == b"ts"


# -- time units ------------------------------------------------------------------------------


def test_units() -> None:
    assert uses_milliseconds(V4)
    assert uses_milliseconds(ProtocolFlags(3, 0))
    assert not uses_milliseconds(V5)
    assert not uses_milliseconds(ASSUMED_PROTOCOL)


def test_convert_seconds() -> None:
    # katcp-python 0.9.3: 1.5 -> 1.5 (v5), 1500.0 (v4), 1500 (int) before v4
    # (tests/data/katcp_v4_client_detect.txt)
    assert convert_seconds(V5, 1.5) == 1.5
    assert convert_seconds(ProtocolFlags(6, 0), 1.5) == 1.5
    assert convert_seconds(V4, 1.5) == 1500.0
    assert convert_seconds(V4, 0.0015005) == pytest.approx(1.5005)
    old = convert_seconds(ProtocolFlags(3, 0), 1.5007)
    assert old == 1500 and isinstance(old, int)
    assert convert_seconds(ProtocolFlags(3, 0), 1092452754.432) == 1092452754432


@pytest.mark.parametrize(
    ("seconds", "v4_bytes"),
    [
        (1700000000.25, b"1700000000250"),
        (1700000000.1234567, b"1700000000123"),  # truncated, as katcp-python 0.9.3
        (1700000000.9999, b"1700000000999"),
        (-1.2506, b"-1250"),  # toward zero
        (0.0, b"0"),
        (1e-5, b"0"),
        (1092452754.432, b"1092452754432"),  # differs: katcp-python 0.9.3 writes ...431
    ],
)
def test_encode_time(seconds: float, v4_bytes: bytes) -> None:
    assert encode_time(V4, seconds) == v4_bytes
    assert encode_time(V5, seconds) == repr(seconds).encode()


@given(st.integers(min_value=-(10**13), max_value=10**13))
def test_milliseconds_round_trip(millis: int) -> None:
    """A v4 time read by us and written back is unchanged (client echo, server relay)."""
    raw = b"%d" % millis
    assert encode_time(V4, decode_time(V4, raw)) == raw
    msg = parse(b"#sensor-status " + raw + b" 1 ts nominal " + raw)
    assert (
        to_wire(V4, from_wire(V4, msg, is_timestamp_sensor=is_ts), is_timestamp_sensor=is_ts) == msg
    )


def test_encode_time_not_finite() -> None:
    assert encode_time(V4, float("inf")) == b"inf"


def test_decode_time() -> None:
    assert decode_time(V4, b"1700000000250") == 1700000000.25
    assert decode_time(V4, b"1700000000123.5") == pytest.approx(1700000000.1235)
    assert decode_time(V5, b"1700000000.25") == 1700000000.25
    with pytest.raises(ValueError, match="could not convert string to float"):
        decode_time(V4, b"12_000")
    with pytest.raises(ValueError):
        decode_time(V4, b"soon")


# -- message conversion against the transcripts ----------------------------------------------


@pytest.mark.parametrize(
    "scenario",
    ["sensor-value", "sensor-sampling-event", "sensor-sampling-differential", "log"],
)
def test_server_informs_match_katcp_v4(v4: Transcript, v5: Transcript, scenario: str) -> None:
    """Every v5 line in seconds, converted, is katcp-python's v4 line byte for byte."""
    v4_lines, v5_lines = received(v4[scenario]), received(v5[scenario])
    assert len(v4_lines) == len(v5_lines)
    checked = 0
    for v4_line, v5_line in zip(v4_lines, v5_lines):
        ours = to_wire(V4, parse(v5_line), is_timestamp_sensor=is_ts)
        assert bytes(ours).rstrip(b"\n") == v4_line
        checked += v4_line.startswith((b"#sensor-", b"#log"))
    assert checked > 0


def test_server_informs_round_trip(v4: Transcript) -> None:
    for line in received(v4["sensor-value"]) + received(v4["log"]):
        msg = parse(line)
        seconds = from_wire(V4, msg, is_timestamp_sensor=is_ts)
        assert bytes(to_wire(V4, seconds, is_timestamp_sensor=is_ts)).rstrip(b"\n") == line


def test_client_reads_v4_informs(v4: Transcript) -> None:
    lines = {
        parse(line).arguments[2]: line
        for line in received(v4["sensor-value"])
        if line.startswith(b"#sensor-value")
    }
    ts = from_wire(V4, parse(lines[b"ts"]), is_timestamp_sensor=is_ts)
    assert ts.arguments == [b"1700000000.25", b"1", b"ts", b"nominal", b"1600000000.5"]
    frac = from_wire(V4, parse(lines[b"frac"]), is_timestamp_sensor=is_ts)
    assert frac.arguments[0] == b"1700000000.123"
    assert frac.arguments[4] == b"0.1"  # not a timestamp sensor: value untouched
    log = from_wire(V4, parse(received(v4["log"])[1]))
    assert log.arguments == [b"warn", b"1700000000.25", b"root", b"captured log message"]


def test_timestamp_sensor_name(v4: Transcript) -> None:
    names = [timestamp_sensor_name(parse(line)) for line in received(v4["sensor-list"])]
    assert [name for name in names if name is not None] == [b"ts"]
    assert timestamp_sensor_name(parse(b"?sensor-list ts x \\@ timestamp")) is None
    assert timestamp_sensor_name(parse(b"#sensor-list ts")) is None


def test_multi_sensor_inform() -> None:
    msg = Message.inform(
        "sensor-status", b"1000", b"2", b"a", b"nominal", b"5", b"ts", b"warn", b"7"
    )
    out = from_wire(V4, msg, is_timestamp_sensor=is_ts)
    assert out.arguments == [b"1.0", b"2", b"a", b"nominal", b"5", b"ts", b"warn", b"0.007"]


@pytest.mark.parametrize(
    ("request_line", "handler_args", "reply_in_seconds", "reply_line"),
    [
        # (what katcp-python's v4 server got, what our handler sees, its reply, katcp's v4 reply)
        (
            b"?sensor-sampling temp period 200",
            [b"temp", b"period", b"0.2"],
            b"!sensor-sampling ok temp period 0.2",
            b"!sensor-sampling ok temp period 200",
        ),
        (
            b"?sensor-sampling cnt period 1500.5",
            [b"cnt", b"period", b"1.5005"],
            b"!sensor-sampling ok cnt period 1.5005",
            b"!sensor-sampling ok cnt period 1500",
        ),
        (
            b"?sensor-sampling frac period 0.5",
            [b"frac", b"period", b"0.0005"],
            b"!sensor-sampling ok frac period 0.0005",
            b"!sensor-sampling ok frac period 0",
        ),
        (
            b"?sensor-sampling cnt differential 2",
            [b"cnt", b"differential", b"2"],
            b"!sensor-sampling ok cnt differential 2",
            b"!sensor-sampling ok cnt differential 2",
        ),
        (
            b"?sensor-sampling temp",
            [b"temp"],
            b"!sensor-sampling ok temp period 0.2",
            b"!sensor-sampling ok temp period 200",
        ),
    ],
)
def test_sampling_periods_match_katcp_v4(
    v4: Transcript,
    request_line: bytes,
    handler_args: List[bytes],
    reply_in_seconds: bytes,
    reply_line: bytes,
) -> None:
    # The query form appears twice; the one that answers "period" follows the set.
    sampling = v4["sensor-sampling-period"] + v4["sensor-sampling-fractional-period"]
    sampling += v4["sensor-sampling-differential"]
    sent = [i for i, (direction, line) in enumerate(sampling) if line == request_line][-1:]
    assert sent, "request is in the transcript"
    replies = [line for _, line in sampling[sent[0] :] if line.startswith(b"!sensor-sampling")]
    assert replies[0] == reply_line
    assert from_wire(V4, parse(request_line)).arguments == handler_args
    assert bytes(to_wire(V4, parse(reply_in_seconds))).rstrip(b"\n") == reply_line


def test_katcp_client_period_as_float_text() -> None:
    # katcp-python 0.9.3's client sends str(convert_seconds(0.2)): see katcp_v4_client_probe.txt
    assert from_wire(V4, parse(b"?sensor-sampling temp period 200.0")).arguments[2] == b"0.2"


def test_client_sampling_conversion() -> None:
    request = to_wire(V4, Message.request("sensor-sampling", "a", "period", 0.5))
    assert request.arguments == [b"a", b"period", b"500"]
    request = to_wire(V4, Message.request("sensor-sampling", "a", "event-rate", 0.1, 10.0))
    assert request.arguments == [b"a", b"event-rate", b"100", b"10000"]
    request = to_wire(V4, Message.request("sensor-sampling", "a", "differential-rate", 3, 1.0, 2.0))
    assert request.arguments == [b"a", b"differential-rate", b"3", b"1000", b"2000"]
    reply = from_wire(V4, parse(b"!sensor-sampling ok a period 500"))
    assert reply.arguments == [b"ok", b"a", b"period", b"0.5"]


def test_conversion_leaves_other_messages() -> None:
    for msg in [
        parse(b"!sensor-sampling fail Unknown\\_sensor"),
        parse(b"?sensor-sampling"),
        parse(b"?sensor-sampling a auto"),
        parse(b"#sensor-list a A \\@ integer 0 10"),
        parse(b"?echo 1000"),
        parse(b"#sensor-status"),
    ]:
        assert from_wire(V4, msg) is msg
        assert to_wire(V4, msg) is msg


def test_v5_is_untouched() -> None:
    for line in [
        b"#sensor-status 1700000000.25 1 ts nominal 1600000000.5",
        b"?sensor-sampling a period 0.5",
        b"#log warn 1700000000.25 root x",
    ]:
        msg = parse(line)
        assert to_wire(V5, msg, is_timestamp_sensor=is_ts) is msg
        assert from_wire(AIO, msg, is_timestamp_sensor=is_ts) is msg


def test_bad_numbers_are_left_for_the_handler() -> None:
    msg = parse(b"?sensor-sampling frac period abc")
    assert from_wire(V4, msg).arguments == [b"frac", b"period", b"abc"]
    msg = parse(b"#sensor-status soon 1 ts nominal never")
    assert from_wire(V4, msg, is_timestamp_sensor=is_ts).arguments == msg.arguments
    reply = Message.reply("sensor-sampling", "ok", "a", "period", float("inf"))
    assert to_wire(V4, reply).arguments[-1] == b"inf"


def test_mid_is_kept_by_conversion() -> None:
    msg = parse(b"!sensor-sampling[3] ok a period 0.5")
    assert to_wire(V4, msg).mid == 3


# -- gates -----------------------------------------------------------------------------------


def test_strategy_gate_matches_katcp_v4(v4: Transcript, v5: Transcript) -> None:
    v4_reply = received(v4["sensor-sampling-event-rate"])[0]
    text = strategy_error(V4, "event-rate")
    assert text is not None
    assert bytes(Message.reply("sensor-sampling", "fail", text)).rstrip(b"\n") == v4_reply
    assert received(v5["sensor-sampling-event-rate"])[-1].startswith(b"!sensor-sampling ok")
    assert strategy_error(V5, "event-rate") is None
    for strategy in ["none", "auto", "period", "event", "differential"]:
        assert strategy_allowed(V4, strategy)
    assert not strategy_allowed(V4, "differential-rate")
    assert strategy_allowed(V5, "differential-rate")


def test_bulk_gate(v4: Transcript, v5: Transcript) -> None:
    assert bulk_sampling_error(AIO, b"a,b") is None
    assert bulk_sampling_error(V4, b"a") is None
    text = bulk_sampling_error(ProtocolFlags(5, 0, "MI"), b"a,b")
    assert text == "Bulk sensor-sampling (a comma-separated list) needs protocol flag B, not 5.0-MI"
    assert bulk_sampling_error(V4, b"temp,cnt") is not None
    # katcp-python refuses it too (as an unknown sensor name) and accepts it with B:
    assert received(v4["sensor-sampling-bulk"])[0].startswith(b"!sensor-sampling fail")
    replies = [line for line in received(v5["sensor-sampling-bulk"]) if line.startswith(b"!")]
    assert replies[0] == b"!sensor-sampling ok temp,cnt auto"


def test_request_gates(v4: Transcript, v5: Transcript) -> None:
    assert received(v4["version-list"]) == [b"!version-list invalid Unknown\\_request."]
    assert received(v4["request-timeout-hint"])[0].startswith(b"!request-timeout-hint invalid")
    assert received(v5["request-timeout-hint"]) == [b"!request-timeout-hint ok 0"]
    assert not request_available(V4, "version-list")
    assert not request_available(V4, "request-timeout-hint")
    assert request_available(V5, "version-list")
    assert request_available(V5, "request-timeout-hint")
    assert not request_available(AIO, "request-timeout-hint")  # no T
    for name in ["help", "watchdog", "sensor-list", "sensor-sampling", "client-list", "echo"]:
        assert request_available(V4, name)


def test_reply_mid(v4: Transcript) -> None:
    # katcp-python 0.9.3 echoes ids in v4 mode; the issue says replies without I never carry one.
    assert received(v4["message-id"])[0] == b"!echo[5] ok hi"
    assert reply_mid(V4, 5) is None
    assert reply_mid(ProtocolFlags(5, 0, "M"), 5) is None
    assert reply_mid(AIO, 5) == 5
    assert reply_mid(AIO, None) is None


def test_connect_informs_match_katcp_v4(v4: Transcript, v5: Transcript) -> None:
    ours = [
        bytes(msg).rstrip(b"\n")
        for msg in v4_connect_informs("capture-api-1.0", "capture-impl-0.1")
    ]
    assert ours == received(v4["connect"])
    assert not sends_version_connect(V4)
    assert sends_version_connect(AIO)
    assert all(line.startswith(b"#version-connect ") for line in received(v5["connect"]))
