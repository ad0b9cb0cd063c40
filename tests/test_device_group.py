"""DeviceGroup against real DeviceServers: group requests, quorum and grace with one member down."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import os
from typing import Any, AsyncIterator, List

import pytest

import aiokatcp
from aiokatcp import DeviceGroup, FailReply, GroupResult, QuorumTimeout, RemoteDevice
from aiokatcp.testing import running
from test_remote_device import Dish, Mode

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
DOWN_PORT = 1  # nothing listens here: that member never connects


@pytest.fixture
async def dishes() -> AsyncIterator[List[Dish]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running(Dish())) for _ in range(3)]


@pytest.fixture
async def group(dishes: List[Dish]) -> AsyncIterator[DeviceGroup]:
    members = {f"m{i}": ("127.0.0.1", server.port) for i, server in enumerate(dishes)}
    members["down"] = ("127.0.0.1", DOWN_PORT)
    async with DeviceGroup(members) as group:
        await group.wait_synced(timeout=30, quorum=3)
        yield group


async def test_members_and_subgroups(group: DeviceGroup) -> None:
    assert list(group) == ["m0", "m1", "m2", "down"]
    assert len(group) == 4 and "m1" in group
    assert isinstance(group["m1"], RemoteDevice) and group["m1"].synced
    west = group.add_subgroup("west", ["m0", "m1"])
    assert group.subgroups["west"] is west
    assert list(west) == ["m0", "m1"] and west["m0"] is group["m0"]
    with pytest.raises(KeyError, match="nonesuch"):
        group.subgroup("m0", "nonesuch")
    result = await west.request("point", 5)
    assert result.ok and sorted(result.succeeded) == ["m0", "m1"]


async def test_wait_synced_names_the_laggard(group: DeviceGroup) -> None:
    with pytest.raises(
        QuorumTimeout, match=r"3 of 4 members synced .*down \(DISCONNECTED\)"
    ) as info:
        await group.wait_synced(timeout=2)
    assert info.value.met == ["m0", "m1", "m2"] and info.value.needed == 4


async def test_request_collects_replies_and_failures(group: DeviceGroup) -> None:
    result = await group.request("point", 30.0, timeout=5)
    assert isinstance(result, GroupResult)
    assert result.succeeded == {name: [b"pointing", b"30.0"] for name in ("m0", "m1", "m2")}
    assert list(result.failed) == ["down"]
    assert isinstance(result["down"], ConnectionError)
    assert not result.ok and len(result) == 4
    failing = await group.request("break")
    assert all(isinstance(failing[name], FailReply) for name in ("m0", "m1", "m2"))


async def test_quorum_with_one_member_down(dishes: List[Dish], group: DeviceGroup) -> None:
    await group.request("point", 10.0)
    met = await group.wait("drive.mode", "tracking", timeout=10, quorum=0.75)
    assert met == ["m0", "m1", "m2"]
    met = await group.wait("drive.mode", Mode.TRACKING, timeout=10, quorum=2)
    assert len(met) >= 2
    with pytest.raises(QuorumTimeout, match=r"3 of 4 members met .*needed 4") as info:
        await group.wait("drive.mode", "tracking", timeout=5)  # default quorum: all
    assert info.value.met == ["m0", "m1", "m2"]
    assert await group.wait("drive.azim", lambda r: r.value == 10.0, timeout=5, quorum=3) == [
        "m0",
        "m1",
        "m2",
    ]


async def test_group_strategy_and_readings(dishes: List[Dish], group: DeviceGroup) -> None:
    result = await group.set_strategy("fan-speed", "event-rate", 1, 5)
    assert result.ok and len(result.succeeded) == 4  # "down" remembers it for when it connects
    assert group["down"].sensor["fan-speed"].strategy == ("event-rate", (1, 5))
    reply, _ = await group["m2"].request("sensor-sampling", "fan-speed")
    assert reply == [b"fan-speed", b"event-rate", b"1.0", b"5.0"]
    rejected = await group.set_strategy("fan-speed", "period")  # needs a parameter
    assert sorted(rejected.failed) == ["m0", "m1", "m2"]
    dishes[1].sensors["fan-speed"].value = 123
    await group["m1"].sensor["fan-speed"].wait(123, timeout=10)
    readings = group.readings("fan-speed")
    assert readings["m1"] is not None and readings["m1"].value == 123
    assert readings["down"] is None


async def test_grace_waits_for_stragglers(dishes: List[Dish], group: DeviceGroup) -> None:
    loop = asyncio.get_running_loop()

    def set_mode(index: int, mode: Mode) -> None:
        dishes[index].sensors["drive.mode"].value = mode

    set_mode(0, Mode.STOWED)
    set_mode(1, Mode.STOWED)
    loop.call_later(3.0, set_mode, 2, Mode.STOWED)  # within the grace period
    start = loop.time()
    met = await group.wait("drive.mode", "stowed", timeout=10, quorum=2, grace=5.0)
    assert met == ["m0", "m1", "m2"]
    # Quorum at once, then the grace period ran out waiting for "down".
    assert loop.time() - start == pytest.approx(5.0, abs=0.1)

    for index in range(3):
        set_mode(index, Mode.IDLE)
    await group.wait("drive.mode", "idle", timeout=10, quorum=3)
    set_mode(0, Mode.TRACKING)
    set_mode(1, Mode.TRACKING)
    handle = loop.call_later(4.0, set_mode, 2, Mode.TRACKING)
    met = await group.wait("drive.mode", "tracking", timeout=10, quorum=2, grace=1.0)
    assert met == ["m0", "m1"]  # m2 came too late for the grace period
    handle.cancel()


async def test_group_with_existing_devices(dishes: List[Dish]) -> None:
    async with RemoteDevice.connect("127.0.0.1", dishes[0].port) as dev:
        async with DeviceGroup({"mine": dev, "other": ("127.0.0.1", dishes[1].port)}) as group:
            assert await group.wait_synced(timeout=10) == ["mine", "other"]
        assert dev.synced  # not closed by the group: its creator owns it
        assert group["other"].state is RemoteDevice.State.CLOSED


def load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{name}", f"{EXAMPLES}/{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_dishes_example() -> None:
    """The docs' example (examples/dishes.py): one broken dish is left out, the rest track."""
    module = load_example("dishes")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tracking = await module.main(5)
    assert tracking == ["m000", "m001", "m002", "m003"]
    assert "left out: m004" in out.getvalue()
    assert "'m003': 'Jupiter'" in out.getvalue()


def test_blocking_device_group() -> None:
    """Threaded use of a group: requests and quorum waits block; one member is down."""
    with aiokatcp.LoopThread() as lt:

        async def start() -> List[Dish]:
            servers = [Dish() for _ in range(3)]
            for server in servers:
                await server.start()
            return servers

        servers = lt.run(start())
        try:
            members = {f"m{i}": ("127.0.0.1", s.port) for i, s in enumerate(servers)}
            members["down"] = ("127.0.0.1", DOWN_PORT)
            with aiokatcp.BlockingDeviceGroup(members, loop_thread=lt) as group:
                assert group.wait_synced(timeout=30, quorum=3) == ["m0", "m1", "m2"]
                result = group.request("point", 3.0, timeout=5)
                assert sorted(result.succeeded) == ["m0", "m1", "m2"]
                assert list(result.failed) == ["down"]
                assert group.wait("drive.mode", "tracking", timeout=10, quorum=0.75) == [
                    "m0",
                    "m1",
                    "m2",
                ]
                assert group["m1"].sensor["drive.azim"].value == 3.0
                assert group.set_strategy("fan-speed", "event").ok
                assert group.readings("drive.azim")["m0"].value == 3.0
                sub = group.subgroup("m0", "m2")
                assert list(sub) == ["m0", "m2"]
                assert sub.request("break").failed.keys() == {"m0", "m2"}
        finally:

            async def stop() -> None:
                for server in servers:
                    await server.stop()

            lt.run(stop())


def test_dishes_threads_example() -> None:
    """The threaded variant (examples/dishes_threads.py), on real sockets."""
    module = load_example("dishes_threads")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tracking = module.main(4)
    assert tracking == ["m000", "m001", "m002"]
    assert "track accepted by 4 of 4 dishes" in out.getvalue()
    assert "m000 target: Saturn" in out.getvalue()
