"""Server limits against hostile or lagging peers (issue 11, server side).

Regression tests for the numbered defects of issue 11 that live in the
server: #2 (``#log`` for malformed lines bypassed the output bound), #5
(unfinished input unbounded across connections; no ``max_connections``),
#6 (sampling floor through the server), #7 (lagging subscribers dropped
instead of coalesced). #1, #3 and #4 are covered by ``test_pattern.py``,
``test_codec.py`` and ``test_message.py``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Callable, List, Tuple

import pytest

from aiokatcp import Sensor
from aiokatcp.server import DeviceServer, RequestContext
from helpers import ScriptedPeer


class LimitServer(DeviceServer):
    VERSION = "limits-1.0"
    BUILD_STATE = "limits-1.0.0"

    def request_echo(self, ctx: RequestContext, *args: bytes) -> Tuple[bytes, ...]:
        """Echo the arguments."""
        return args

    async def request_later(self, ctx: RequestContext, delay: float) -> str:
        """Reply after a while."""
        await asyncio.sleep(delay)
        return "done"


async def start(nsensors: int = 0, **kwargs: object) -> LimitServer:
    srv = LimitServer("127.0.0.1", 0, **kwargs)  # type: ignore[arg-type]
    for i in range(nsensors):
        srv.sensors.add(Sensor(str, f"s{i}", "a string sensor", default="-"))
    await srv.start()
    return srv


async def connect(srv: DeviceServer) -> ScriptedPeer:
    peer = await ScriptedPeer.connect_to(srv)
    await peer.expect_connect()
    return peer


async def until(cond: Callable[[], bool], limit: int = 100_000) -> None:
    """Let the loop run until `cond` holds (fails instead of hanging)."""
    for _ in range(limit):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def next_line(peer: ScriptedPeer) -> bytes:
    """The next line that is not ``#client-connected``."""
    while True:
        line = await peer.readline()
        if not line.startswith(b"#client-connected "):
            return line


async def read_until(peer: ScriptedPeer, head: bytes) -> List[bytes]:
    lines = []
    while True:
        line = await peer.readline()
        assert line, f"EOF before {head!r}"
        lines.append(line)
        if line.startswith(head):
            return lines


# -- #2: the output bound counts #log and replies; malformed-line reports are rate-limited ----


async def test_malformed_line_reports_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    srv = await start()
    peer = await connect(srv)
    with caplog.at_level(logging.WARNING, "aiokatcp.connection"):
        await peer.send_raw(b"x\n" * 1000 + b"?watchdog\n")
        lines = await read_until(peer, b"!watchdog")
    logs = [line for line in lines if line.startswith(b"#log error")]
    assert len(logs) == 10  # one burst per window, not one #log per line
    assert len(lines) == 11
    assert caplog.text.count("Malformed message received") == 10
    await asyncio.sleep(1.5)  # the next window
    await peer.send(b"y")
    (line,) = await peer.readlines(1)
    assert line.startswith(b"#log error ")
    assert b"(990\\_earlier\\_malformed\\_lines\\_not\\_reported)" in line
    assert await peer.request(b"?watchdog") == [b"!watchdog ok"]
    await peer.close()
    await srv.stop()


async def test_log_error_counts_against_max_backlog(caplog: pytest.LogCaptureFixture) -> None:
    # The #log error of a malformed line is queued output like any other: a client whose
    # backlog passes max_backlog is dropped, whatever the message.
    srv = await start(max_backlog=50)
    peer = await connect(srv)
    with caplog.at_level(logging.WARNING, "aiokatcp.server"):
        await peer.send(b"garbage")
        line = await peer.readline()
        assert line.startswith(b"#log error ")
        assert (
            await peer.readline()
            == b"#disconnect client\\_too\\_slow:\\_write\\_backlog\\_exceeded"
        )
        await peer.expect_eof()
    assert "Disconnecting slow client" in caplog.text
    assert srv.disconnect_counts["slow"] == 1
    await peer.close()
    await srv.stop()


async def test_garbage_sender_that_never_reads_stays_bounded() -> None:
    srv = await start()
    peer = await connect(srv)
    peer.pause_reading()
    # 1 MB of garbage lines: 2.x queued a #log error (40 times the input) for each one,
    # so the server stopped reading once its output backed up, and this never drained.
    peer.send_nowait(b"x\n" * 500_000)
    await asyncio.wait_for(peer.writer.drain(), 60)
    peer.resume_reading()
    await peer.send(b"?watchdog")
    lines = await read_until(peer, b"!watchdog")
    assert 10 <= len([line for line in lines if line.startswith(b"#log error")]) < 100
    await peer.close()
    await srv.stop()


# -- #5: a server-wide bound on unfinished input; max_connections; idle timeout ---------------


async def test_input_bound_drops_the_connection_holding_most(
    caplog: pytest.LogCaptureFixture,
) -> None:
    srv = await start(max_input_buffered=100_000)
    a, b, c = [await connect(srv) for _ in range(3)]
    conn_a, conn_b, _ = srv.connections
    await a.send_raw(b"?watchdog " + b"a" * 30_000)
    await until(lambda: conn_a.buffered >= 30_000)
    await b.send_raw(b"?watchdog " + b"b" * 50_000)
    await until(lambda: conn_b.buffered >= 50_000)
    with caplog.at_level(logging.WARNING, "aiokatcp.server"):
        await c.send_raw(b"?watchdog " + b"c" * 30_000)
        assert await next_line(b) == (
            b"#disconnect too\\_much\\_unfinished\\_input:\\_server-wide\\_input\\_bound\\_exceeded"
        )
        await b.expect_eof()
    assert "holding the most unfinished input" in caplog.text
    assert srv.disconnect_counts["input"] == 1
    assert conn_b.buffered == 0
    # The bound still counts exactly what is held: 65 + 30 kB fit, 65 + 40 kB do not.
    await a.send_raw(b"a" * 35_000)
    await until(lambda: conn_a.buffered >= 65_000)
    assert srv.disconnect_counts["input"] == 1
    await c.send_raw(b"c" * 10_000)
    assert await next_line(a) == (
        b"#disconnect too\\_much\\_unfinished\\_input:\\_server-wide\\_input\\_bound\\_exceeded"
    )
    assert srv.disconnect_counts["input"] == 2
    # The other is unaffected and its line still completes.
    for peer in (c,):
        await peer.send(b"")
        assert (await next_line(peer)).startswith(b"!watchdog fail")
        assert await peer.request(b"?watchdog") == [b"!watchdog ok"]
    for peer in (a, b, c):
        await peer.close()
    await srv.stop()


async def test_input_bound_accounting_survives_a_drop_during_dispatch() -> None:
    # A client dropped while its own input is being handled (here: too slow, on the
    # #log of a malformed line) gives back exactly what it held.
    srv = await start(max_backlog=50, max_input_buffered=100_000)
    x = await connect(srv)
    await x.send_raw(b"garbage\n?watchdog " + b"x" * 30_000)
    await next_line(x)  # #log error
    assert (await next_line(x)).startswith(b"#disconnect client\\_too\\_slow")
    await x.expect_eof()
    y = await connect(srv)
    (conn_y,) = srv.connections
    await y.send_raw(b"?watchdog " + b"y" * 95_000)
    await until(lambda: conn_y.buffered >= 95_000)
    assert srv.disconnect_counts["input"] == 0
    await y.send_raw(b"y" * 10_000)
    assert (await next_line(y)).startswith(b"#disconnect too\\_much\\_unfinished\\_input")
    assert srv.disconnect_counts["input"] == 1
    await x.close()
    await y.close()
    await srv.stop()


async def test_input_bound_default() -> None:
    srv = LimitServer("127.0.0.1", 0)
    assert srv.max_input_buffered == 64 * 1024 * 1024
    assert srv.max_connections is None
    assert srv.idle_timeout is None
    assert srv.min_sampling_interval == 0.001


async def test_max_connections() -> None:
    srv = await start(max_connections=2)
    a = await connect(srv)
    b = await connect(srv)
    c = await ScriptedPeer.connect_to(srv)
    assert (
        await c.readline() == b"#disconnect too\\_many\\_connections\\_(max_connections\\_is\\_2)"
    )
    await c.expect_eof()
    assert srv.disconnect_counts["connections"] == 1
    assert len(srv.connections) == 2
    await a.close()
    await until(lambda: len(srv.connections) == 1)
    d = await connect(srv)  # a slot is free again
    assert await d.request(b"?watchdog") == [b"!watchdog ok"]
    for peer in (b, c, d):
        await peer.close()
    await srv.stop()


async def test_idle_timeout() -> None:
    srv = await start(idle_timeout=10)
    idle = await connect(srv)
    busy = await connect(srv)
    await idle.expect(re.compile(rb"#client-connected .*"))
    busy.send_nowait(b"?later 30")
    for _ in range(3):
        await asyncio.sleep(6)
        assert await idle.request(b"?watchdog") == [b"!watchdog ok"]  # activity keeps it
    await asyncio.sleep(13)
    assert (
        await next_line(idle) == b"#disconnect idle\\_timeout:\\_nothing\\_received\\_for\\_10\\_s"
    )
    await idle.expect_eof()
    # A client with a request in progress is not idle.
    assert await busy.readline() == b"!later ok done"
    assert srv.disconnect_counts["idle"] == 1
    await idle.close()
    await busy.close()
    await srv.stop()


# -- #6: the minimum sampling interval, through the server -------------------------------------


async def test_sampling_floor_default() -> None:
    srv = await start(nsensors=1)
    peer = await connect(srv)
    assert await peer.request(b"?sensor-sampling s0 period 0.0001") == [
        b"!sensor-sampling fail period\\_must\\_be\\_at\\_least\\_0.001\\_s\\_"
        b"(the\\_server's\\_minimum\\_sampling\\_interval)"
    ]
    assert await peer.request(b"?sensor-sampling s0 event-rate 0 0.0001") == [
        b"!sensor-sampling fail longest\\_interval\\_must\\_be\\_at\\_least\\_0.001\\_s\\_"
        b"(the\\_server's\\_minimum\\_sampling\\_interval)"
    ]
    lines = await peer.request(b"?sensor-sampling s0 period 0.001")
    assert lines[-1] == b"!sensor-sampling ok s0 period 0.001"
    await peer.close()
    await srv.stop()


async def test_sampling_floor_configurable() -> None:
    srv = await start(nsensors=1, min_sampling_interval=0.5)
    peer = await connect(srv)
    (reply,) = await peer.request(b"?sensor-sampling s0 period 0.1")
    assert reply.startswith(b"!sensor-sampling fail period\\_must\\_be\\_at\\_least\\_0.5\\_s")
    (reply,) = await peer.request(b"?sensor-sampling s0,s0 period 0.1")
    assert reply.startswith(b"!sensor-sampling fail")
    await peer.close()
    await srv.stop()


# -- #7: lagging subscribers are coalesced per sensor, not dropped ----------------------------


def status_values(lines: List[bytes]) -> List[tuple[bytes, int]]:
    out = []
    for line in lines:
        if line.startswith(b"#sensor-status "):
            fields = line.split()
            out.append((fields[3], int(fields[5].split(b":")[0])))
    return out


async def lag(srv: LimitServer, nsensors: int, rounds: int, size: int, base: int = 0) -> None:
    for r in range(base + 1, base + rounds + 1):
        for i in range(nsensors):
            srv.sensors[f"s{i}"].value = f"{r}:" + "x" * size
        await asyncio.sleep(0)


async def test_lagging_subscriber_is_coalesced_not_dropped() -> None:
    # 10 sensors x 2000 rounds x 1 kB = 20 MB of reports against a 1 MB max_backlog:
    # 2.x dropped this client; it now gets the latest value of each sensor.
    srv = await start(nsensors=10, max_backlog=1_000_000)
    peer = await connect(srv)
    names = ",".join(f"s{i}" for i in range(10)).encode()
    lines = await peer.request(b"?sensor-sampling " + names + b" auto")
    assert lines[-1] == b"!sensor-sampling ok " + names + b" auto"
    peer.pause_reading()
    (conn,) = srv.connections
    most = 0
    for r in range(20):
        await lag(srv, 10, 100, 1000, base=100 * r)
        most = max(most, conn.get_write_buffer_size() + conn.sampling.pending_size)
    assert conn.sampling.pending  # it is coalescing
    assert conn.sampling.pending_size <= 10 * 1100  # at most one report per sensor
    assert most < 1_000_000
    assert not conn.dropping and srv.disconnect_counts["slow"] == 0
    peer.resume_reading()
    await peer.send(b"?watchdog")
    got = await read_until(peer, b"!watchdog")
    values = status_values(got)
    # Per sensor, values only increase (nothing reordered) and the last one is the latest.
    last = {}
    for name, value in values:
        assert value > last.get(name, 0)
        last[name] = value
    assert last == {f"s{i}".encode(): 2000 for i in range(10)}
    assert len(values) < 20_000 // 2
    await peer.close()
    await srv.stop()


async def test_reply_does_not_overtake_coalesced_reports() -> None:
    srv = await start(nsensors=3, max_backlog=1_000_000)
    peer = await connect(srv)
    await peer.request(b"?sensor-sampling s0,s1,s2 auto")
    await peer.send(b"?later 5")
    peer.pause_reading()
    (conn,) = srv.connections
    while not conn.sampling.pending:
        await lag(srv, 3, 10, 1000)
    await lag(srv, 3, 1, 1000)
    await asyncio.sleep(6)  # the reply of ?later is written now
    final = srv.sensors["s0"].value
    peer.resume_reading()
    lines = await read_until(peer, b"!later")
    assert lines[-1] == b"!later ok done"
    statuses = [line for line in lines if line.startswith(b"#sensor-status")]
    assert statuses[-1].endswith(final.encode())
    await peer.close()
    await srv.stop()


async def test_lagging_subscriber_past_hard_cap_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    srv = await start(nsensors=200, max_backlog=150_000)
    peer = await connect(srv)
    names = ",".join(f"s{i}" for i in range(200)).encode()
    await peer.request(b"?sensor-sampling " + names + b" auto")
    peer.pause_reading()
    (conn,) = srv.connections
    with caplog.at_level(logging.WARNING, "aiokatcp.server"):
        for _ in range(20):
            if conn.dropping:
                break
            await lag(srv, 200, 5, 1000)
    assert conn.dropping
    assert srv.disconnect_counts["slow"] == 1
    assert "Disconnecting slow client" in caplog.text
    await peer.close()
    await srv.stop()


async def test_large_read_parsed_in_pieces_keeps_every_request_in_order() -> None:
    # A read is parsed 16 KiB at a time (few objects per piece); lines crossing the
    # pieces and the order of the replies are unaffected.
    srv = await start()
    peer = await connect(srv)
    lines = [b"?echo[%d] %s" % (i + 1, b"y" * (i % 50)) for i in range(3000)]
    await peer.send_raw(b"\n".join(lines) + b"\n")
    replies = await peer.readlines(3000)
    assert replies == [
        b"!echo[%d] ok" % (i + 1) + (b" " + b"y" * (i % 50) if i % 50 else b"") for i in range(3000)
    ]
    await peer.close()
    await srv.stop()
