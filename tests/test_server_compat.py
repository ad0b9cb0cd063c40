"""DeviceServer against the aiokatcp 2.x behaviour (contract §10.1-10.3) and the agreed APIs."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import AsyncIterator, List

import pytest

from aiokatcp import Message, Sensor
from aiokatcp.connection import Connection
from aiokatcp.server import DeviceServer, RequestContext, request_timeout_hint
from aiokatcp.testing import ScriptedPeer, running

#: The standard requests of aiokatcp 2.3 (a device with no extras offers exactly these).
STANDARD_23 = [
    b"client-list",
    b"halt",
    b"help",
    b"log-level",
    b"sensor-list",
    b"sensor-sampling",
    b"sensor-value",
    b"version-list",
    b"watchdog",
]


class Plain(DeviceServer):
    VERSION = "plain-1.0"
    BUILD_STATE = "plain-1.0.0"

    async def request_mine(self, ctx: RequestContext) -> None:
        """The device's own request."""

    async def request_made(self, ctx: RequestContext, x: int) -> Message:
        """Return a reply built with make_reply."""
        return ctx.make_reply("ok", x + 1)

    async def request_wrong_reply(self, ctx: RequestContext) -> Message:
        """Return a reply that belongs to another request."""
        return Message.reply("other", "ok")

    async def request_threaded(self, ctx: RequestContext, n: int) -> None:
        """Reply from another thread, after informs from it."""
        done = asyncio.Event()
        loop = asyncio.get_running_loop()

        def work() -> None:
            ctx.inform("from-thread", threading.get_ident() != main)
            ctx.informs([("row", i) for i in range(n)], send_reply=False)
            self.mass_inform("broadcast", "from-thread")
            ctx.reply("ok", "threaded")
            loop.call_soon_threadsafe(done.set)

        main = threading.get_ident()
        thread = threading.Thread(target=work)
        thread.start()
        await done.wait()
        thread.join()


class WithExtras(Plain):
    SENSOR_SAMPLING_CLEAR = True

    @request_timeout_hint(5)
    async def request_slow(self, ctx: RequestContext) -> None:
        """Declares a timeout hint."""

    async def restart(self) -> None:
        """Restart (does nothing here)."""


async def connect(server: DeviceServer) -> ScriptedPeer:
    peer = await ScriptedPeer.connect_to(server)
    return peer


@pytest.fixture
async def plain() -> AsyncIterator[Plain]:
    async with running(Plain("127.0.0.1", 0)) as srv:
        yield srv


async def help_names(peer: ScriptedPeer) -> List[bytes]:
    lines = await peer.request(b"?help")
    return [line.split(b" ")[1] for line in lines[:-1]]


async def test_plain_device_looks_like_23(plain: Plain) -> None:
    async with await connect(plain) as peer:
        banner = await peer.readlines(3)
        assert banner[0] == b"#version-connect katcp-protocol 5.1-MIB"
        assert await help_names(peer) == sorted(
            [*STANDARD_23, b"made", b"mine", b"threaded", b"wrong-reply"]
        )
        for extra in [b"restart", b"request-timeout-hint", b"sensor-sampling-clear"]:
            assert await peer.request(b"?" + extra) == [
                b"!" + extra + b" invalid unknown\\_request\\_" + extra
            ]


async def test_extras_appear_when_opted_in() -> None:
    async with running(WithExtras("127.0.0.1", 0)) as srv, await connect(srv) as peer:
        banner = await peer.readlines(3)
        assert banner[0] == b"#version-connect katcp-protocol 5.1-MIBT"
        names = await help_names(peer)
        assert {b"restart", b"request-timeout-hint", b"sensor-sampling-clear"} <= set(names)
        assert await peer.request(b"?restart") == [b"!restart ok"]
        assert await peer.request(b"?request-timeout-hint slow") == [
            b"#request-timeout-hint slow 5.0",
            b"!request-timeout-hint ok 1",
        ]
        assert await peer.request(b"?sensor-sampling-clear") == [b"!sensor-sampling-clear ok"]


def test_missing_version_is_a_type_error() -> None:
    class NoVersion(DeviceServer):
        BUILD_STATE = "x"

    class NoBuild(DeviceServer):
        VERSION = "x"

    with pytest.raises(TypeError, match=r"^NoVersion does not define VERSION$"):
        NoVersion("127.0.0.1", 0)
    with pytest.raises(TypeError, match=r"^NoBuild does not define BUILD_STATE$"):
        NoBuild("127.0.0.1", 0)


async def test_port_and_address(plain: Plain) -> None:
    host, port = plain.address
    assert host == "127.0.0.1"
    assert port == plain.port == plain.sockets[0].getsockname()[1] != 0
    with pytest.raises(RuntimeError):
        Plain("127.0.0.1", 0).port  # noqa: B018


async def test_make_reply_and_returned_message(plain: Plain) -> None:
    async with await connect(plain) as peer:
        await peer.readlines(3)
        assert await peer.request(b"?made[4] 1") == [b"!made[4] ok 2"]
        [reply] = await peer.request(b"?wrong-reply")
        assert reply.startswith(b"!wrong-reply fail Traceback")
        assert b"not\\_its\\_reply" in reply


@pytest.mark.real_loop
async def test_context_and_mass_inform_from_another_thread() -> None:
    async with running(Plain("127.0.0.1", 0)) as srv:
        async with await ScriptedPeer.connect_to(srv, timeout=30) as peer:
            await peer.readlines(3)
            await peer.send(b"?threaded[3] 2")
            assert await peer.readlines(5) == [
                b"#threaded[3] from-thread 1",
                b"#threaded[3] row 0",
                b"#threaded[3] row 1",
                b"#broadcast from-thread",
                b"!threaded[3] ok threaded",
            ]


@pytest.mark.real_loop
async def test_sensor_set_value_from_another_thread_reaches_subscribers() -> None:
    srv = Plain("127.0.0.1", 0)
    sensor = Sensor(int, "counter", "a counter")
    srv.sensors.add(sensor)
    async with running(srv):
        async with await ScriptedPeer.connect_to(srv, timeout=30) as peer:
            await peer.readlines(3)
            lines = await peer.request(b"?sensor-sampling counter auto")
            assert lines[-1] == b"!sensor-sampling ok counter auto"
            thread = threading.Thread(
                target=sensor.set_value, args=(42,), kwargs={"timestamp": 7.5}
            )
            thread.start()
            thread.join()
            assert await peer.readline() == b"#sensor-status 7.5 1 counter nominal 42"


@pytest.mark.real_loop
async def test_rate_limited_sampling_with_set_value_from_another_thread() -> None:
    """A sampler's timer asked for on another thread still fires on the server's loop."""
    srv = Plain("127.0.0.1", 0)
    sensor = Sensor(int, "counter", "a counter")
    srv.sensors.add(sensor)
    async with running(srv):
        async with await ScriptedPeer.connect_to(srv, timeout=30) as peer:
            await peer.readlines(3)
            lines = await peer.request(b"?sensor-sampling counter event-rate 0.2 1000")
            assert lines[-1] == b"!sensor-sampling ok counter event-rate 0.2 1000.0"
            # Within 0.2 s of the initial report: the sampler asks for a timer.
            thread = threading.Thread(
                target=sensor.set_value, args=(42,), kwargs={"timestamp": 7.5}
            )
            thread.start()
            thread.join()
            assert await peer.readline() == b"#sensor-status 7.5 1 counter nominal 42"


async def test_bulk_sampling_lets_other_requests_through(plain: Plain) -> None:
    for i in range(200):
        plain.sensors.add(Sensor(int, f"s{i:03d}", ""))
    names = ",".join(f"s{i:03d}" for i in range(200)).encode()
    async with await connect(plain) as peer:
        await peer.readlines(3)
        await peer.send(b"?sensor-sampling[1] " + names + b" event", b"?watchdog[2]")
        lines: List[bytes] = []
        while len(lines) < 202:
            line = await peer.readline()
            if not line.startswith(b"#interface-changed"):
                lines.append(line)
        watchdog = lines.index(b"!watchdog[2] ok")
        statuses = [i for i, line in enumerate(lines) if line.startswith(b"#sensor-status")]
        assert len(statuses) == 200
        # answered after the first batch of 50, long before the bulk request finished
        assert 50 <= watchdog <= 60
        assert lines[-1].startswith(b"!sensor-sampling[1] ok s000,")


async def test_bulk_sampling_sensor_removed_midway(plain: Plain) -> None:
    sensors = [Sensor(int, f"s{i:03d}", "") for i in range(120)]
    for sensor in sensors:
        plain.sensors.add(sensor)
    names = ",".join(s.name for s in sensors).encode()

    async with await connect(plain) as peer:
        await peer.readlines(3)
        await peer.send(b"?sensor-sampling " + names + b" event")
        # Once the first batch is done, remove a sensor of the last batch.
        while True:
            line = await peer.readline()
            if line.startswith(b"#sensor-status") and b" s049 " in line:
                break
        del plain.sensors["s110"]
        rest = []
        while not rest or not rest[-1].startswith(b"!sensor-sampling"):
            rest.append(await peer.readline())
        assert any(b" s110 " in line for line in rest)  # its initial status still came
        assert rest[-1].startswith(b"!sensor-sampling ok")
        conn = plain.connections[0]
        assert conn.get_sampler(sensors[110]) is None
        assert conn.get_sampler(sensors[111]) is not None


async def test_debug_log_of_wire_traffic(plain: Plain, caplog: pytest.LogCaptureFixture) -> None:
    async with await connect(plain) as peer:
        await peer.readlines(3)
        with caplog.at_level(logging.DEBUG, "aiokatcp.connection"):
            assert await peer.request(b"?watchdog[5]") == [b"!watchdog[5] ok"]
    messages = [r.getMessage() for r in caplog.records if r.name == "aiokatcp.connection"]
    assert any(re.fullmatch(r"Received message b'\?watchdog\[5\]\\n' \[\S+\]", m) for m in messages)
    assert any(re.fullmatch(r"Sent message b'!watchdog\[5\] ok\\n' \[\S+\]", m) for m in messages)


async def test_drain_raises_the_connections_error() -> None:
    class Owner:
        def handle_message(self, conn: object, msg: Message) -> None:
            pass

        def _connection_made(self, conn: object) -> None:
            pass

        def _connection_lost(self, conn: object, exc: object) -> None:
            pass

        def _eof_received(self, conn: object) -> bool:
            return False

    class Transport(asyncio.Transport):
        def get_extra_info(self, name: str, default: object = None) -> object:
            return default

        def is_closing(self) -> bool:
            return False

    conn = Connection(Owner(), False)
    conn.connection_made(Transport())
    conn.pause_writing()
    waiter = asyncio.ensure_future(conn.drain())
    await asyncio.sleep(0)
    conn.connection_lost(ConnectionResetError("reset by peer"))
    with pytest.raises(ConnectionResetError, match="reset by peer"):
        await waiter
    # A connection that closes cleanly, or is closed already, just returns.
    conn2 = Connection(Owner(), False)
    conn2.connection_made(Transport())
    conn2.pause_writing()
    waiter = asyncio.ensure_future(conn2.drain())
    await asyncio.sleep(0)
    conn2.connection_lost(None)
    await waiter
    await conn2.drain()


async def test_exactly_once_under_stop_without_cancel(plain: Plain) -> None:
    """stop(cancel=False) lets running requests finish; each gets one reply, then #disconnect."""

    class Slow(Plain):
        async def request_nap(self, ctx: RequestContext, t: float) -> str:
            """Sleep t seconds."""
            await asyncio.sleep(t)
            return "woke"

    srv = Slow("127.0.0.1", 0, max_pending=2)
    await srv.start()
    async with await connect(srv) as peer:
        await peer.readlines(3)
        await peer.send(b"?nap[1] 3", b"?nap[2] 1", b"?nap[3] 2")  # the third waits in the FIFO
        await asyncio.sleep(0.5)
        await srv.stop(cancel=False)
        lines = (await asyncio.wait_for(peer.reader.read(), 60)).splitlines()
        assert lines == [
            b"!nap[2] ok woke",
            b"!nap[1] ok woke",
            b"!nap[3] ok woke",
            b"#disconnect server\\_shutting\\_down",
        ]


@pytest.mark.real_loop
async def test_thread_safe_loop_hands_timers_to_the_loop_thread() -> None:
    from aiokatcp._server_sampling import ThreadSafeLoop

    loop = asyncio.get_running_loop()
    proxy = ThreadSafeLoop(loop)
    fired = asyncio.Event()
    threads: List[int] = []

    def callback(tag: str) -> None:
        threads.append(threading.get_ident())
        assert tag == "kept"
        fired.set()

    def work() -> None:
        proxy.call_at(proxy.time(), callback, "dropped").cancel()  # cancelled before it runs
        proxy.call_at(proxy.time(), callback, "kept")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    await asyncio.wait_for(fired.wait(), 10)
    assert threads == [threading.get_ident()]
    # On the loop's own thread it is just loop.call_at.
    assert isinstance(proxy.call_at(proxy.time() + 100, callback, "x"), asyncio.TimerHandle)
