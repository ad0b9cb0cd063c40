"""The ``lru`` sensor type (values ``nominal``/``error``) on the server and the client."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

import aiokatcp
from aiokatcp import Client, DeviceServer, Lru, Sensor, SensorWatcher, decode, encode, get_type
from helpers import ScriptedPeer


def test_registry() -> None:
    assert get_type(Lru).name == "lru"
    assert encode(Lru.NOMINAL) == b"nominal"
    assert encode(Lru.ERROR) == b"error"
    assert decode(Lru, b"nominal") is Lru.NOMINAL
    assert decode(Lru, b"error") is Lru.ERROR
    with pytest.raises(ValueError, match=r"b'failure' is not a valid lru value"):
        decode(Lru, b"failure")
    with pytest.raises(ValueError, match="not a valid lru value"):
        decode(Lru, b"NOMINAL")


def test_public() -> None:
    assert aiokatcp.Lru is aiokatcp.protocol.Lru
    assert Lru.__module__ == "aiokatcp.protocol"
    assert [member.name for member in Lru] == ["NOMINAL", "ERROR"]


def test_sensor() -> None:
    sensor = Sensor(Lru, "board.lru", "Board LRU")
    assert sensor.type_name == "lru"
    assert sensor.params == []
    assert sensor.value is Lru.NOMINAL  # default
    sensor.set_value(Lru.ERROR, Sensor.Status.ERROR)
    assert sensor.value is Lru.ERROR


def test_other_enums_stay_discrete() -> None:
    assert get_type(Sensor.Status).name == "discrete"


class LruServer(DeviceServer):
    VERSION = "lru-1.0"
    BUILD_STATE = "lru-1.0.0"

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0)
        sensor = Sensor(Lru, "board.lru", "Board LRU")
        sensor.set_value(Lru.ERROR, Sensor.Status.ERROR, 1700000000.25)
        self.sensors.add(sensor)


@pytest.fixture
async def server() -> AsyncIterator[LruServer]:
    server = LruServer()
    await server.start()
    yield server
    await server.stop()


def _port(server: DeviceServer) -> int:
    return int(server.sockets[0].getsockname()[1])


async def test_server_lists_lru(server: LruServer) -> None:
    # Same #sensor-list line as katcp-python 0.9.3 sends (tests/data/katcp_v4_server_v5.txt).
    async with await ScriptedPeer.connect("127.0.0.1", _port(server)) as peer:
        await peer.expect_connect()
        lines = await peer.request(b"?sensor-list")
        assert lines == [b"#sensor-list board.lru Board\\_LRU \\@ lru", b"!sensor-list ok 1"]
        lines = await peer.request(b"?sensor-value board.lru")
        assert lines == [
            b"#sensor-value 1700000000.25 1 board.lru error error",
            b"!sensor-value ok 1",
        ]


async def test_client_round_trip(server: LruServer) -> None:
    client = await Client.connect("127.0.0.1", _port(server))
    try:
        assert await client.sensor_value("board.lru") is Lru.ERROR
        watcher = SensorWatcher(client)
        client.add_sensor_watcher(watcher)
        await watcher.synced.wait()
        mirror = watcher.sensors["board.lru"]
        assert mirror.stype is Lru
        assert mirror.type_name == "lru"
        assert mirror.value is Lru.ERROR
        server.sensors["board.lru"].set_value(Lru.NOMINAL, Sensor.Status.NOMINAL)
        # The #sensor-status is written before the reply to a later request.
        await client.request("watchdog")
        assert mirror.value is Lru.NOMINAL
    finally:
        client.close()
        await client.wait_closed()
