"""Testing client code against a scripted device (runs on its own: see conftest.py)."""

from __future__ import annotations

import asyncio

import pytest
from thermostat import heat_to

import aiokatcp
from aiokatcp.testing import PeerServer


async def test_heat_to(katcp_peer_server: PeerServer) -> None:
    async with aiokatcp.Client(*katcp_peer_server.address) as client:
        device = await katcp_peer_server.accept()  # sends #version-connect first
        await client.wait_connected()
        task = asyncio.create_task(heat_to(client, 24))
        await device.expect(b"?set-target[1] 24")
        await device.send(b"!set-target[1] ok")
        await device.expect(b"?settle[2]")
        await device.send(b"#log info 0 device settling...", b"!settle[2] ok 24.0")
        assert await task == 24.0


async def test_heat_to_reports_failure(katcp_peer_server: PeerServer) -> None:
    async with aiokatcp.Client(*katcp_peer_server.address) as client:
        device = await katcp_peer_server.accept()
        await client.wait_connected()
        task = asyncio.create_task(heat_to(client, 99))
        await device.expect(b"?set-target[1] 99")
        await device.send(b"!set-target[1] fail out\\_of\\_range")
        with pytest.raises(aiokatcp.FailReply, match="out of range"):
            await task


async def test_device_disappears(katcp_peer_server: PeerServer) -> None:
    async with aiokatcp.Client(*katcp_peer_server.address) as client:
        device = await katcp_peer_server.accept()
        await client.wait_connected()
        task = asyncio.create_task(heat_to(client, 24))
        await device.expect(b"?set-target[1] 24")
        await device.reset()  # the device crashes mid-request
        with pytest.raises(ConnectionError):
            await task
