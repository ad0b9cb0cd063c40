"""Wire and client differences from aiokatcp 2.3 found by the black-box audit, now fixed.

The audit drives ``tests/data/compat/device.py`` under both implementations
(``wire_audit.py``, ``client_audit.py``); each test here pins one fix.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Optional

import pytest

import aiokatcp
from aiokatcp import Sensor
from aiokatcp.server import DeviceServer, RequestContext
from aiokatcp.testing import ScriptedPeer, running


class Device(DeviceServer):
    VERSION = "audit-1.0"
    BUILD_STATE = "audit-1.0.0"

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0)
        for name in ["counter", "temp", "colour"]:
            self.sensors.add(Sensor(int, name, "", initial_status=Sensor.Status.NOMINAL))

    async def request_reply_and_return(self, ctx: RequestContext) -> int:
        """Replies, then also returns a value."""
        ctx.reply("ok")
        return 1


@pytest.fixture
async def device() -> AsyncIterator[Device]:
    async with running(Device()) as srv:
        yield srv


@pytest.fixture
async def peer(device: Device) -> AsyncIterator[ScriptedPeer]:
    async with await ScriptedPeer.connect_to(device) as peer:
        await peer.readlines(3)
        yield peer


@pytest.mark.parametrize("request_name", [b"sensor-list", b"sensor-value"])
async def test_invalid_regex_fails_with_re_text(peer: ScriptedPeer, request_name: bytes) -> None:
    # 2.3: the bare re.error text, no prefix.
    assert await peer.request(b"?" + request_name + b" /[/") == [
        b"!" + request_name + b" fail unterminated\\_character\\_set\\_at\\_position\\_0"
    ]


async def test_unsupported_regex_still_names_the_pattern(peer: ScriptedPeer) -> None:
    # Valid for re but refused by the safe matcher: our own (prefixed) text.
    [reply] = await peer.request(b"?sensor-list /(?=a)/")
    assert reply.startswith(b"!sensor-list fail invalid\\_regular\\_expression\\_'/(?=a)/':")


async def test_sampling_query_of_a_comma_list_is_an_unknown_name(peer: ScriptedPeer) -> None:
    assert await peer.request(b"?sensor-sampling counter,temp") == [
        b"!sensor-sampling fail Unknown\\_sensor\\_'counter,temp'"
    ]


async def test_reply_and_return_logs_a_traceback(peer: ScriptedPeer) -> None:
    lines = await peer.request(b"?reply-and-return")
    assert lines == [b"!reply-and-return ok"]
    [log] = await peer.readlines(1)
    assert log.startswith(b"#log error ")
    assert b" aiokatcp.server Traceback\\_(most\\_recent\\_call\\_last):" in log
    assert log.endswith(b"RuntimeError:\\_handler\\_both\\_replied\\_and\\_returned\\_a\\_value\\n")


async def test_sensor_value_of_a_regex_names_the_count(device: Device) -> None:
    async with await aiokatcp.Client.connect("127.0.0.1", device.port) as client:
        for sensor_type in [None, int]:
            with pytest.raises(aiokatcp.FailReply) as info:
                await client.sensor_value("/o/", sensor_type)
            assert str(info.value) == "Server returned 2 sensors, but only 1 expected"


async def test_sensor_value_invalid_status_text(device: Device) -> None:
    device.sensors["counter"].set_value(1, Sensor.Status.UNKNOWN)
    async with await aiokatcp.Client.connect("127.0.0.1", device.port) as client:
        with pytest.raises(ValueError) as info:
            await client.sensor_value("counter")
        assert str(info.value) == f"Reading for counter has status {Sensor.Status.UNKNOWN}"


class ExtendedList(Device):
    async def request_sensor_list(self, ctx: RequestContext, name: Optional[str] = None) -> int:
        """List sensors, plus one virtual sensor (a 2.x-style override)."""
        count = await super().request_sensor_list(ctx, name)
        ctx.inform("virtual", "A virtual sensor", "", "integer")
        return count + 1


async def test_sensor_list_override_extends_the_reply() -> None:
    # 2.x: request_sensor_list sends the informs and returns the count (it does not reply).
    async with running(ExtendedList()) as srv, await ScriptedPeer.connect_to(srv) as peer:
        await peer.readlines(3)
        assert await peer.request(b"?sensor-list temp") == [
            b"#sensor-list temp \\@ \\@ integer",
            b"#sensor-list virtual A\\_virtual\\_sensor \\@ integer",
            b"!sensor-list ok 2",
        ]


async def test_standard_help_summaries_are_those_of_23(peer: ScriptedPeer) -> None:
    lines = await peer.request(b"?help")
    summaries = dict(line.split(b" ", 2)[1:3] for line in lines[:-1])
    assert summaries == {
        b"client-list": b"Request\\_the\\_list\\_of\\_connected\\_clients.",
        b"halt": b"Halt\\_the\\_device\\_server.",
        b"help": b"Return\\_help\\_on\\_the\\_available\\_requests.",
        b"log-level": b"Query\\_or\\_set\\_the\\_current\\_logging\\_level.",
        b"reply-and-return": b"Replies,\\_then\\_also\\_returns\\_a\\_value.",
        b"sensor-list": b"Request\\_the\\_list\\_of\\_sensors.",
        b"sensor-sampling": b"Configure\\_or\\_query\\_the\\_way\\_a\\_sensor\\_is\\_sampled.",
        b"sensor-value": b"Request\\_the\\_value\\_of\\_a\\_sensor\\_or\\_sensors.",
        b"version-list": (
            b"Request\\_the\\_list\\_of\\_versions\\_of\\_roles\\_and\\_subcomponents."
        ),
        b"watchdog": b"Check\\_that\\_the\\_server\\_is\\_still\\_alive.",
    }


async def test_no_automatic_interface_changed(device: Device, peer: ScriptedPeer) -> None:
    # 2.3 never sends #interface-changed by itself: a 2.x device announces its changes
    # with mass_inform, and one more would make every client re-list twice.
    device.sensors.add(Sensor(int, "extra", ""))
    device.sensors.discard(device.sensors["temp"])
    device.mass_inform("interface-changed", "sensor-list")
    assert await peer.readlines(1) == [b"#interface-changed sensor-list"]
    assert await peer.request(b"?watchdog") == [b"!watchdog ok"]


def test_loop_before_start_is_the_current_loop() -> None:
    # 2.x programs build the server, then drive it with loop.run_until_complete.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        server = Device()
        assert server.loop is loop
        loop.run_until_complete(server.start())
        loop.run_until_complete(server.stop())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
