"""Our server's v5 output, put through the v4 dialect, is katcp-python's v4 output byte for byte.

This checks the plan for the server integration of issue 12 without
touching the server: a ``DeviceServer`` with the sensors of
``tests/data/capture/katcp09_server.py`` is driven by a scripted peer, and
each line goes through :func:`from_wire` (requests in) and :func:`to_wire`
(replies and informs out) exactly where the integration will call them. The
result is compared with what katcp-python 0.9.3's v4 server sent
(``tests/data/katcp_v4_server_v4.txt``).
"""

from __future__ import annotations

import enum
import pathlib
from typing import AsyncIterator, List

import pytest

from aiokatcp import DeviceServer, Lru, Message, ProtocolFlags, Sensor, Timestamp
from aiokatcp._dialect import from_wire, to_wire
from helpers import ScriptedPeer

V4 = ProtocolFlags(4, 0, "M")
TS = 1700000000.25
KATCP_V4 = (pathlib.Path(__file__).parent / "data" / "katcp_v4_server_v4.txt").read_bytes()


class Mode(enum.Enum):
    IDLE = 0
    RUN = 1


class CaptureServer(DeviceServer):
    """The sensors of katcp09_server.py, with the same readings."""

    VERSION = "capture-api-1.0"
    BUILD_STATE = "capture-impl-0.1"

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0)
        readings = [
            (Sensor(float, "temp", "Temperature", "degC"), 21.5, Sensor.Status.WARN, TS),
            (Sensor(int, "cnt", "A counter"), 3, Sensor.Status.NOMINAL, TS),
            (Sensor(Timestamp, "ts", "A timestamp"), Timestamp(1600000000.5), None, TS),
            (Sensor(Lru, "board.lru", "Board LRU"), Lru.ERROR, Sensor.Status.ERROR, TS),
            (Sensor(Mode, "mode", "Mode"), Mode.RUN, None, TS),
            (Sensor(bool, "ok-flag", "Boolean"), True, None, TS),
            (Sensor(bytes, "name", "a string"), b"hello world", None, TS),
            (Sensor(float, "frac", "Sub-millisecond timestamps"), 0.1, None, 1700000000.1234567),
        ]
        for sensor, value, status, timestamp in readings:
            sensor.set_value(value, status or Sensor.Status.NOMINAL, timestamp)
            self.sensors.add(sensor)


@pytest.fixture
async def peer() -> AsyncIterator[ScriptedPeer]:
    server = CaptureServer()
    await server.start()
    port = server.sockets[0].getsockname()[1]
    async with await ScriptedPeer.connect("127.0.0.1", port) as peer:
        await peer.expect_connect()
        yield peer
    await server.stop()


def is_ts(name: bytes) -> bool:
    return name == b"ts"


def as_v4(line: bytes) -> bytes:
    """What the integrated v4 server will send instead of `line`."""
    msg = to_wire(V4, Message.parse(line + b"\n"), is_timestamp_sensor=is_ts)
    return bytes(msg).rstrip(b"\n")


async def v4_request(peer: ScriptedPeer, v4_line: bytes) -> List[bytes]:
    """Send a v4 request through the dialect; return the v4 lines that come back."""
    v5 = bytes(from_wire(V4, Message.parse(v4_line + b"\n"))).rstrip(b"\n")
    return [as_v4(line) for line in await peer.request(v5)]


def in_transcript(lines: List[bytes]) -> None:
    for line in lines:
        assert b"<<< " + line + b"\n" in KATCP_V4, line


async def test_sensor_value(peer: ScriptedPeer) -> None:
    lines = await v4_request(peer, b"?sensor-value")
    assert lines[-1] == b"!sensor-value ok 8"
    in_transcript(lines)
    assert b"#sensor-value 1700000000250 1 ts nominal 1600000000500" in lines
    assert b"#sensor-value 1700000000123 1 frac nominal 0.1" in lines


@pytest.mark.parametrize(
    "request_line",
    [
        b"?sensor-sampling temp period 200",
        b"?sensor-sampling temp period 200.0",  # as katcp-python's client sends it
        b"?sensor-sampling cnt period 1500.5",
        b"?sensor-sampling ts event",
        b"?sensor-sampling board.lru auto",
        b"?sensor-sampling cnt differential 2",
        b"?sensor-sampling temp none",
    ],
)
async def test_sensor_sampling(peer: ScriptedPeer, request_line: bytes) -> None:
    lines = await v4_request(peer, request_line)
    in_transcript(lines)
    if not request_line.endswith(b"none"):
        assert lines[0].startswith(b"#sensor-status ")  # initial update, as katcp-python


async def test_sampling_query_echoes_milliseconds(peer: ScriptedPeer) -> None:
    await v4_request(peer, b"?sensor-sampling temp period 200")
    lines = await v4_request(peer, b"?sensor-sampling temp")
    assert lines == [b"!sensor-sampling ok temp period 200"]
