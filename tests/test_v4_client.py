"""Our client against a scripted KATCP v4 device (issue 12).

The device's lines are those katcp-python 0.9.3's v4 server sent
(``tests/data/katcp_v4_server_v4.txt``); the client must give seconds
everywhere (each time divided by 1000 exactly once), send periods in
milliseconds, match replies without ids first-in first-out per request name,
give up on mixed v4/v5 connect informs whatever their order, and talk to a
preset or silent device at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, Dict, List

import pytest

from aiokatcp import (
    BlockingClient,
    Client,
    DeviceServer,
    LoopThread,
    ProtocolError,
    ProtocolFlags,
    Sensor,
    SensorWatcher,
    Timestamp,
)
from aiokatcp.protocol import VersionInfo
from aiokatcp.testing import PeerServer, ScriptedPeer

TS = 1700000000.25
V4_CONNECT = (b"#version capture-api-1.0", b"#build-state capture-impl-0.1")
V5_CONNECT = b"#version-connect katcp-protocol 5.0-IM"
#: What the v4 device answers (lines from katcp_v4_server_v4.txt).
ANSWERS: Dict[bytes, List[bytes]] = {
    b"?sensor-list ts": [b"#sensor-list ts A\\_timestamp \\@ timestamp", b"!sensor-list ok 1"],
    b"?sensor-value ts": [
        b"#sensor-value 1700000000250 1 ts nominal 1600000000500",
        b"!sensor-value ok 1",
    ],
    b"?sensor-list temp": [
        b"#sensor-list temp Temperature degC float -50.0 150.0",
        b"!sensor-list ok 1",
    ],
    b"?sensor-value temp": [
        b"#sensor-value 1700000000250 1 temp warn 21.5",
        b"!sensor-value ok 1",
    ],
    b"?sensor-list": [
        b"#sensor-list temp Temperature degC float -50.0 150.0",
        b"#sensor-list ts A\\_timestamp \\@ timestamp",
        b"!sensor-list ok 2",
    ],
    b"?sensor-sampling temp auto": [
        b"#sensor-status 1700000000250 1 temp warn 21.5",
        b"!sensor-sampling ok temp auto",
    ],
    b"?sensor-sampling ts auto": [
        b"#sensor-status 1700000000250 1 ts nominal 1600000000500",
        b"!sensor-sampling ok ts auto",
    ],
    b"?sensor-sampling temp period 200": [
        b"#sensor-status 1700000000250 1 temp warn 21.5",
        b"!sensor-sampling ok temp period 200",
    ],
}


async def answer(peer: ScriptedPeer, count: int) -> List[bytes]:
    """Play the v4 device for `count` requests; return the request lines."""
    requests = []
    for _ in range(count):
        line = await peer.readline()
        requests.append(line)
        await peer.send(*ANSWERS[line])
    return requests


@pytest.fixture
async def peers() -> AsyncIterator[PeerServer]:
    async with PeerServer() as server:
        yield server


@pytest.fixture
async def client(peers: PeerServer) -> AsyncIterator[Client]:
    client = Client("127.0.0.1", peers.port, auto_reconnect=False)
    yield client
    client.close()
    await client.wait_closed()


@pytest.fixture
async def v4(peers: PeerServer, client: Client) -> ScriptedPeer:
    peer = await peers.accept(greeting=None)
    await peer.send(*V4_CONNECT)
    await client.wait_connected()
    return peer


async def test_detects_v4(v4: ScriptedPeer, client: Client) -> None:
    assert client.protocol == ProtocolFlags(4, 0)
    assert client.protocol_version == (4, 0)
    assert client.protocol_flags == frozenset()
    assert client.versions == {
        "version": VersionInfo("capture-api-1.0"),
        "build-state": VersionInfo("capture-impl-0.1"),
    }
    assert client.convert_seconds(1.5) == 1500.0


async def test_sensor_reading_in_seconds(v4: ScriptedPeer, client: Client) -> None:
    task = asyncio.create_task(client.sensor_reading("ts"))
    # One after the other: the listing says the value is a time (a device may reorder replies).
    assert await answer(v4, 1) == [b"?sensor-list ts"]
    assert await answer(v4, 1) == [b"?sensor-value ts"]
    reading = await task
    assert reading.timestamp == TS
    assert reading.value == Timestamp(1600000000.5)  # a timestamp-typed value, converted once
    assert reading.status is Sensor.Status.NOMINAL


async def test_sensor_value_with_type_in_seconds(v4: ScriptedPeer, client: Client) -> None:
    """With a type, no ``?sensor-list`` is sent; the timestamp value is still converted once."""
    task = asyncio.create_task(client.sensor_value("ts", Timestamp))
    assert await answer(v4, 1) == [b"?sensor-value ts"]
    assert await task == Timestamp(1600000000.5)
    # Now the client knows ts is a timestamp sensor: converted at the wire, not twice.
    task2 = asyncio.create_task(client.sensor_reading("ts"))
    await answer(v4, 2)
    assert (await task2).value == Timestamp(1600000000.5)
    task3 = asyncio.create_task(client.sensor_value("ts", Timestamp))
    await answer(v4, 1)
    assert await task3 == Timestamp(1600000000.5)
    task4 = asyncio.create_task(client.sensor_reading("temp"))
    await answer(v4, 2)
    reading = await task4
    assert (reading.timestamp, reading.value, reading.status) == (TS, 21.5, Sensor.Status.WARN)


async def test_sampling_period_sent_in_milliseconds(v4: ScriptedPeer, client: Client) -> None:
    task = asyncio.create_task(client.request("sensor-sampling", "temp", "period", 0.2))
    assert await answer(v4, 1) == [b"?sensor-sampling temp period 200"]
    reply, informs = await task
    assert reply == [b"temp", b"period", b"0.2"]  # echo converted back to seconds
    assert informs == []  # the initial #sensor-status is asynchronous


async def test_log_timestamp_in_seconds(
    v4: ScriptedPeer, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, "aiokatcp.client.remote"):
        await v4.send(b"#log warn 1700000000250 root captured\\_log\\_message")
        task = asyncio.create_task(client.request("watchdog"))
        await v4.expect(b"?watchdog")
        await v4.send(b"!watchdog ok")
        await task
    (record,) = [r for r in caplog.records if r.name == "aiokatcp.client.remote"]
    assert record.katcp_timestamp == b"1700000000.25"  # type: ignore[attr-defined]


async def test_watcher_in_seconds(v4: ScriptedPeer, client: Client) -> None:
    watcher = SensorWatcher(client)
    client.add_sensor_watcher(watcher)
    assert await answer(v4, 1) == [b"?sensor-list"]
    requests = await answer(v4, 2)
    assert sorted(requests) == [b"?sensor-sampling temp auto", b"?sensor-sampling ts auto"]
    await asyncio.wait_for(watcher.synced.wait(), 10)
    temp, ts = watcher.sensors["temp"], watcher.sensors["ts"]
    assert (temp.timestamp, temp.value) == (TS, 21.5)
    assert (ts.timestamp, ts.value) == (TS, Timestamp(1600000000.5))
    await v4.send(b"#sensor-status 1700000001500 1 ts nominal 1600000002250")
    await v4.send(b"#sensor-status 1700000001750 1 temp nominal 22.0")
    while temp.value != 22.0:
        await asyncio.sleep(0.01)
    assert (ts.timestamp, ts.value) == (1700000001.5, Timestamp(1600000002.25))
    assert temp.timestamp == 1700000001.75


# -- requests without message ids -------------------------------------------------------------


async def test_fifo_per_name_two_names_outstanding(v4: ScriptedPeer, client: Client) -> None:
    slow = asyncio.create_task(client.request("slow", 0.3))
    echo = asyncio.create_task(client.request("echo", "during-slow"))
    # Both are sent before either is answered (the device answers out of order).
    assert await v4.readlines(2) == [b"?slow 0.3", b"?echo during-slow"]
    await v4.send(b"!echo ok during-slow")
    assert await echo == ([b"during-slow"], [])
    assert not slow.done()
    await v4.send(b"!slow ok")
    assert await slow == ([], [])


async def test_same_name_requests_one_at_a_time(v4: ScriptedPeer, client: Client) -> None:
    """A v4 device may answer two requests of one name out of order (katcp-python's does)."""
    first = asyncio.create_task(client.request("slow", 0.4))
    second = asyncio.create_task(client.request("slow", 0.1))
    assert await v4.readline() == b"?slow 0.4"
    await asyncio.sleep(1)
    assert not second.done()
    await v4.send(b"!slow ok first")
    assert await first == ([b"first"], [])
    assert await v4.readline() == b"?slow 0.1"
    await v4.send(b"!slow ok second")
    assert await second == ([b"second"], [])


# -- mixed connect informs ------------------------------------------------------------------


@pytest.mark.parametrize(
    "lines",
    [
        [*V4_CONNECT, V5_CONNECT],
        [V5_CONNECT, *V4_CONNECT],
        [b"#version-connect katcp-library x-1.0 x-1.0.1", V4_CONNECT[0]],
        [V4_CONNECT[1], V5_CONNECT],
    ],
    ids=["v4-then-v5", "v5-then-v4", "v5-library-then-v4", "v4-build-state-then-v5"],
)
async def test_mixed_informs_give_up(
    peers: PeerServer, lines: List[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever the order: ProtocolError, logged, and the connection is dropped."""

    async def connect() -> Client:
        return await Client.connect("127.0.0.1", peers.port, auto_reconnect=False)

    connecting = asyncio.create_task(connect())
    peer = await peers.accept(greeting=None)
    await peer.send(*lines)
    with pytest.raises(ProtocolError, match="both KATCP v4 and v5 connect informs"):
        await connecting
    await peer.expect_eof()
    assert any("both KATCP v4 and v5" in r.getMessage() for r in caplog.records)


async def test_mixed_informs_after_connect(
    peers: PeerServer, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    peer = await peers.accept(greeting=V5_CONNECT)
    await client.wait_connected()
    assert client.protocol == ProtocolFlags(5, 0, "MI")
    with caplog.at_level(logging.ERROR, "aiokatcp.client"):
        await peer.send(V4_CONNECT[0])
        await peer.expect_eof()
    await client.wait_closed()
    assert isinstance(client.last_exc, ProtocolError)
    assert any(r.levelno == logging.ERROR and "v4 and v5" in r.getMessage() for r in caplog.records)


# -- preset protocol and silent devices --------------------------------------------------------


async def test_preset_protocol(peers: PeerServer, caplog: pytest.LogCaptureFixture) -> None:
    client = Client("127.0.0.1", peers.port, protocol=ProtocolFlags(4, 0, "M"))
    loop = asyncio.get_running_loop()
    start = loop.time()
    peer = await peers.accept(greeting=None)
    await client.wait_connected()
    assert loop.time() - start < 0.5  # no negotiation wait (the timeout is 5 s)
    assert client.protocol == ProtocolFlags(4, 0, "M") and client.protocol_version == (4, 0)
    with caplog.at_level(logging.WARNING, "aiokatcp.client"):
        await peer.send(b"#version-connect katcp-protocol 5.1-MIB")  # contradicts: warning only
        task = asyncio.create_task(client.request("sensor-sampling", "temp", "period", 0.2))
        assert await answer(peer, 1) == [b"?sensor-sampling temp period 200"]
        assert (await task)[0] == [b"temp", b"period", b"0.2"]
    assert client.is_connected and client.protocol == ProtocolFlags(4, 0, "M")
    assert any("contradicts the preset" in r.getMessage() for r in caplog.records)
    assert client.versions["katcp-protocol"] == VersionInfo("5.1-MIB")
    client.close()
    await client.wait_closed()


async def test_silent_device_requests_at_once(peers: PeerServer, client: Client) -> None:
    """A device that announces nothing gets requests at once (no negotiation-timeout wait)."""
    peer = await peers.accept(greeting=None)
    loop = asyncio.get_running_loop()
    start = loop.time()
    task = asyncio.create_task(client.request("watchdog"))
    assert await peer.readline() == b"?watchdog"  # no message id: nothing is known yet
    await peer.send(b"!watchdog ok")
    await task
    assert loop.time() - start < 0.5
    await client.wait_connected()  # after the negotiation timeout, as v5 without flags
    assert client.protocol == ProtocolFlags(5, 0) and client.protocol_version is None
    # A late v4 announcement is still taken.
    await peer.send(*V4_CONNECT)
    task = asyncio.create_task(client.request("watchdog"))  # the client reads the informs first
    await peer.expect(b"?watchdog")
    await peer.send(b"!watchdog ok")
    await task
    task = asyncio.create_task(client.request("sensor-sampling", "temp", "period", 0.2))
    assert await peer.readline() == b"?sensor-sampling temp period 200"
    await peer.send(b"!sensor-sampling ok temp period 200")
    await task
    assert client.protocol_version == (4, 0)


async def test_versions_of_a_v5_device(peers: PeerServer, client: Client) -> None:
    peer = await peers.accept(greeting=None)
    await peer.send(
        b"#version-connect katcp-protocol 5.1-MIB",
        b"#version-connect katcp-library aiokatcp-2.4 aiokatcp-2.4.0",
        b"#version-connect katcp-device dev-1.0 dev-1.0.3",
        b"#version-connect firmware fw-7",
    )
    await client.wait_connected()
    task = asyncio.create_task(client.request("watchdog"))
    await peer.expect(b"?watchdog[1]")
    await peer.send(b"!watchdog[1] ok")
    await task
    assert client.versions == {
        "katcp-protocol": VersionInfo("5.1-MIB"),
        "katcp-library": VersionInfo("aiokatcp-2.4", "aiokatcp-2.4.0"),
        "katcp-device": VersionInfo("dev-1.0", "dev-1.0.3"),
        "firmware": VersionInfo("fw-7"),
    }
    assert client.protocol == ProtocolFlags(5, 1, "MIB") and client.convert_seconds(1.5) == 1.5


def test_blocking_client_against_a_v4_device() -> None:
    """katcp-python's BlockingClient users get ``protocol`` and ``convert_seconds`` too."""

    class Board(DeviceServer):
        VERSION = "board-1.0"
        BUILD_STATE = "board-1.0.0"
        PROTOCOL_INFO = ProtocolFlags(4, 0, "M")

        def __init__(self) -> None:
            super().__init__("127.0.0.1", 0)
            sensor = Sensor(float, "temp", "Temperature", "degC")
            sensor.set_value(21.5, timestamp=TS)
            self.sensors.add(sensor)

    async def start() -> Board:
        board = Board()
        await board.start()
        return board

    with LoopThread() as lt:
        board = lt.run(start())
        with BlockingClient("127.0.0.1", board.port, auto_reconnect=False) as client:
            client.wait_connected(5)
            assert client.protocol == ProtocolFlags(4, 0)
            assert client.convert_seconds(1.5) == 1500.0
            reading = client.sensor_reading("temp")
            assert (reading.timestamp, reading.value) == (TS, 21.5)
            reply, _ = client.request("sensor-sampling", "temp", "period", 0.25)
            assert reply == [b"temp", b"period", b"0.25"]  # 250 ms on the wire
        lt.run(board.stop())
