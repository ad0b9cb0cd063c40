"""Testing a device server with aiokatcp.testing (runs on its own: see conftest.py)."""

from __future__ import annotations

import re

import pytest
from thermostat import Thermostat

import aiokatcp
from aiokatcp.testing import (
    ScriptedPeer,
    assert_request_fails,
    client_for,
    running,
    wait_for_sensor,
)


# -- with the plugin's fixtures: define katcp_device, use katcp_server / katcp_client
@pytest.fixture
def katcp_device() -> Thermostat:
    return Thermostat("127.0.0.1", 0)


async def test_set_target(katcp_server: Thermostat, katcp_client: aiokatcp.Client) -> None:
    await katcp_client.request("set-target", 22.5)
    assert katcp_server.target.value == 22.5


async def test_target_out_of_range(katcp_client: aiokatcp.Client) -> None:
    await assert_request_fails(katcp_client, "set-target", 99, match="between 5 and 30")


async def test_wire_format(katcp_peer: ScriptedPeer) -> None:
    await katcp_peer.send(b"?set-target[7] 21")
    await katcp_peer.expect(b"!set-target[7] ok")
    await katcp_peer.send(b"?sensor-value target")
    await katcp_peer.expect(
        re.compile(rb"#sensor-value \d+\.\d+ 1 target nominal 21\.0"),
        b"!sensor-value ok 1",
    )


# -- without fixtures: the context managers do the same
async def test_without_fixtures() -> None:
    async with running(Thermostat("127.0.0.1", 0)) as server:
        assert server.port != 0
        async with client_for(server) as client:
            reply, _ = await client.request("sensor-value", "temperature")
            assert reply == [b"1"]


# -- a slow request, on the virtual clock: an hour of device time passes at once
@pytest.mark.virtual_clock
async def test_settle_takes_an_hour_of_virtual_time(
    katcp_server: Thermostat, katcp_client: aiokatcp.Client
) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    start = loop.time()
    await katcp_client.request("set-target", 25)
    reply, _ = await katcp_client.request("settle")
    assert reply == [b"25.0"]
    assert loop.time() - start == pytest.approx(5 * 60)


@pytest.mark.virtual_clock
async def test_wait_for_the_mirrored_sensor(
    katcp_server: Thermostat, katcp_client: aiokatcp.Client
) -> None:
    import asyncio

    watcher = aiokatcp.SensorWatcher(katcp_client)
    katcp_client.add_sensor_watcher(watcher)
    await watcher.synced.wait()
    await katcp_client.request("sensor-sampling", "temperature", "auto")
    await katcp_client.request("set-target", 23)
    settle = asyncio.create_task(katcp_client.request("settle"))
    # A predicate gets the whole Reading: the value and the status.
    reading = await wait_for_sensor(
        watcher.sensors["temperature"],
        lambda r: r.value >= 22 and r.status == aiokatcp.Sensor.Status.NOMINAL,
        timeout=600,
    )
    assert reading.value == 22.0
    await settle
    await wait_for_sensor(katcp_server.temperature, 23.0, timeout=0)
