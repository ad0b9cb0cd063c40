"""Fuzzing a live server connection (issue 11): arbitrary input never costs the connection.

Hypothesis feeds a running server (on the virtual-clock loop) grammar fragments,
near-valid lines with odd message ids and random bytes, in random chunks; the
connection must stay open and answer the next request, and nothing may be
logged as a crash of the connection or of a handler.
"""

from __future__ import annotations

import asyncio
import logging
from typing import List

from hypothesis import given, settings
from hypothesis import strategies as st

from aiokatcp import Sensor
from aiokatcp.server import DeviceServer
from aiokatcp.testing import ScriptedPeer, virtual_clock_loop


class FuzzServer(DeviceServer):
    VERSION = "fuzz-1.0"
    BUILD_STATE = "fuzz-1.0.0"

    async def request_halt(self, ctx: object) -> None:  # type: ignore[override]
        """Not stopped by fuzz input."""


FRAGMENTS = [
    b"?",
    b"!",
    b"#",
    b"watchdog",
    b"sensor-value",
    b"sensor-list",
    b"sensor-sampling",
    b"help",
    b"s0",
    b"/.*/",
    b"/(.|.)*!/",
    b"[",
    b"]",
    b"[0]",
    b"[1]",
    b"[2147483648]",
    b"[" + b"9" * 5000 + b"]",
    b" ",
    b"\t",
    b"\n",
    b"\r",
    b"\r\n",
    b"\\",
    b"\\_",
    b"\\z",
    b"\x00",
    b"\x1b",
    b"period",
    b"0.0001",
    b"event-rate",
    b"auto",
    b"x" * 5000,
]

pieces = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=64)), max_size=40)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def exchange(data: bytes, cuts: List[int]) -> None:
    srv = FuzzServer("127.0.0.1", 0, limit=4096)
    srv.sensors.add(Sensor(int, "s0", "a sensor"))
    await srv.start()
    peer = await ScriptedPeer.connect_to(srv)
    await peer.expect_connect()
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for start, end in zip(points, points[1:]):
        await peer.send_raw(data[start:end])
    await peer.send_raw(b"\n?watchdog[2147483647]\n")
    while True:
        line = await peer.readline()
        assert line, "the server closed the connection"
        if line == b"!watchdog[2147483647] ok":
            break
    assert len(srv.connections) == 1
    await peer.close()
    await srv.stop()


@settings(max_examples=60, deadline=None)
@given(parts=pieces, cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_fuzz_live_server_connection(parts: List[bytes], cuts: List[int]) -> None:
    records = Records()
    root = logging.getLogger()
    root.addHandler(records)
    loop = virtual_clock_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(exchange(b"".join(parts), cuts), 600))
    finally:
        loop.close()
        root.removeHandler(records)
    assert [r.getMessage() for r in records.records] == []
