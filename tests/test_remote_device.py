"""RemoteDevice against real DeviceServers (on the virtual-clock loop's in-memory network)."""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import AsyncIterator, Dict, List, Optional, Tuple

import pytest

import aiokatcp
from aiokatcp import (
    DeviceState,
    FailReply,
    Message,
    Reading,
    RemoteDevice,
    RemoteSensor,
    RequestContext,
    Sensor,
)
from aiokatcp._client_helpers import parse_timeout_hints
from aiokatcp._remote_names import matches, parse_help, python_name, quorum_count
from aiokatcp.server import DeviceServer, request_timeout_hint
from aiokatcp.testing import running


class Mode(enum.Enum):
    IDLE = 1
    TRACKING = 2
    STOWED = 3


class Dish(DeviceServer):
    VERSION = "dish-1.0"
    BUILD_STATE = "dish-1.0.0"

    def __init__(self, port: int = 0) -> None:
        super().__init__("127.0.0.1", port)
        self.sensors.add(Sensor(Mode, "drive.mode", "Drive mode", default=Mode.IDLE))
        self.sensors.add(Sensor(float, "drive.azim", "Azimuth", "deg", default=0.0))
        self.sensors.add(Sensor(int, "fan-speed", "Fan speed", "rpm", default=100))
        for sensor in self.sensors.values():
            sensor.set_value(sensor.value, Sensor.Status.NOMINAL, 1000.0)
        #: Requests added at run time: name -> help text (answered by unhandled_request).
        self.dynamic: Dict[str, str] = {}
        self.fail_help = False
        self.fail_sensor_list = False
        self.hang_help = False
        self.fail_hints = False

    async def request_point(self, ctx: RequestContext, azim: float) -> Tuple[str, float]:
        """Point the dish to an azimuth (degrees)."""
        self.sensors["drive.azim"].value = azim
        self.sensors["drive.mode"].value = Mode.TRACKING
        return "pointing", azim

    async def request_break(self, ctx: RequestContext) -> None:
        """Always fails."""
        raise FailReply("broken on purpose")

    @request_timeout_hint(2.5)
    async def request_slew(self, ctx: RequestContext, seconds: float) -> None:
        """Slew for a while (takes `seconds`)."""
        await asyncio.sleep(seconds)

    async def request_help(self, ctx: RequestContext, name: Optional[str] = None) -> None:
        """List the requests, including those added at run time."""
        if self.hang_help:
            await asyncio.sleep(1e6)
        if self.fail_help:
            raise FailReply("help is broken")
        if name is None:
            for key, text in sorted(self.dynamic.items()):
                ctx.inform(key, text)
        await super().request_help(ctx, name)

    async def request_sensor_list(self, ctx: RequestContext, name: Optional[str] = None) -> int:
        """List the sensors (can be made to fail)."""
        if self.fail_sensor_list:
            raise FailReply("sensor list is broken")
        return await super().request_sensor_list(ctx, name)

    async def request_request_timeout_hint(
        self, ctx: RequestContext, name: Optional[str] = None
    ) -> None:
        """Report timeout hints (can be made to fail)."""
        if self.fail_hints:
            raise FailReply("hints are broken")
        await super().request_request_timeout_hint(ctx, name)

    async def unhandled_request(self, ctx: RequestContext, req: Message) -> None:
        if req.name not in self.dynamic:
            await super().unhandled_request(ctx, req)
        ctx.reply("ok", "dynamic", *req.arguments)


@pytest.fixture
async def dish() -> AsyncIterator[Dish]:
    async with running(Dish()) as server:
        yield server


@pytest.fixture
async def dev(dish: Dish) -> AsyncIterator[RemoteDevice]:
    async with RemoteDevice.connect("127.0.0.1", dish.port, timeout=30) as device:
        yield device


# -- pure rules ------------------------------------------------------------------------------


def test_python_names() -> None:
    assert python_name("sensor-list") == "sensor_list"
    assert python_name("drive.mode") == "drive_mode"
    assert python_name("class") == "class_"
    assert python_name("3d-view") == "_3d_view"


def test_parse_help() -> None:
    informs = [Message.inform("help", b"a-b", b"Does a."), Message.inform("help", b"c")]
    assert parse_help(informs) == {"a-b": "Does a.", "c": ""}
    with pytest.raises(ValueError, match="malformed"):
        parse_help([Message.inform("help")])


def test_parse_hints() -> None:
    informs = [
        Message.inform("request-timeout-hint", b"slew", b"2.5"),
        Message.inform("request-timeout-hint", b"halt", b"0"),  # 0: no hint
        Message.inform("request-timeout-hint", b"bad", b"soon"),
        Message.inform("request-timeout-hint", b"short"),
        Message.inform("request-timeout-hint", b"inf", b"inf"),
    ]
    assert parse_timeout_hints(informs, logging.getLogger("test")) == {"slew": 2.5}


def test_matches() -> None:
    nominal = Reading(1.0, Sensor.Status.NOMINAL, "tracking")
    assert matches(nominal, "tracking")
    assert matches(nominal, Mode.TRACKING)  # same wire bytes
    assert not matches(nominal, "idle")
    assert not matches(Reading(1.0, Sensor.Status.UNREACHABLE, "tracking"), "tracking")
    assert matches(
        Reading(1.0, Sensor.Status.UNREACHABLE, 3), lambda r: r.status.name == "UNREACHABLE"
    )


def test_quorum_count() -> None:
    assert quorum_count(1.0, 5) == 5
    assert quorum_count(0.5, 5) == 3
    assert quorum_count(0.8, 5) == 4
    assert quorum_count(2, 5) == 2
    with pytest.raises(ValueError):
        quorum_count(6, 5)
    with pytest.raises(ValueError):
        quorum_count(0.0, 5)
    with pytest.raises(TypeError):
        quorum_count(True, 5)


# -- requests --------------------------------------------------------------------------------


async def test_requests_from_help(dev: RemoteDevice) -> None:
    assert dev.state is DeviceState.SYNCED
    assert "point" in dev.req and "sensor_list" in dir(dev.req)
    assert dev.req.point.__doc__ == "Point the dish to an azimuth (degrees)."
    assert await dev.req.point(12.5) == [b"pointing", b"12.5"]
    assert await dev.req["point"](1) == [b"pointing", b"1.0"]
    with pytest.raises(FailReply, match="broken on purpose"):
        await dev.req.break_()
    with pytest.raises(AttributeError, match="no request 'nonesuch'"):
        dev.req.nonesuch  # noqa: B018


async def test_request_added_at_run_time(dish: Dish, dev: RemoteDevice) -> None:
    assert "calibrate" not in dev.req
    dish.dynamic["calibrate"] = "Calibrate the receiver."
    dish.mass_inform("interface-changed")
    await dev.wait_state(DeviceState.SYNCING)
    await dev.wait_synced(timeout=10)
    assert dev.req.calibrate.__doc__ == "Calibrate the receiver."
    assert await dev.req.calibrate("now") == [b"dynamic", b"now"]


async def test_timeout_hints_applied(dev: RemoteDevice) -> None:
    assert dev.request_timeout("slew") == 2.5
    assert dev.request_timeout("point") is None
    assert "2.5 s" in (dev.req.slew.__doc__ or "")
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(asyncio.TimeoutError, match="slew"):
        await dev.req.slew(10)
    assert loop.time() - start == pytest.approx(2.5, abs=0.01)
    assert await dev.req.slew(10, timeout=20) == []  # an explicit timeout wins


# -- sensors ---------------------------------------------------------------------------------


async def test_sensor_objects(dish: Dish, dev: RemoteDevice) -> None:
    mode = dev.sensor.drive_mode
    assert mode is dev.sensor["drive.mode"]
    assert mode.value == "idle"
    assert mode.status is Sensor.Status.NOMINAL
    assert mode.timestamp == 1000.0
    assert mode.received_timestamp is not None
    assert mode.description == "Drive mode" and mode.type_name == "discrete"
    assert sorted(dev.sensor) == ["drive.azim", "drive.mode", "fan-speed"]
    assert [s.name for s in dev.list_sensors(filter=r"^drive\.")] == ["drive.azim", "drive.mode"]
    dish.sensors["fan-speed"].set_value(9000, Sensor.Status.WARN)
    await dev.sensor.fan_speed.wait(9000, timeout=5)
    assert [s.name for s in dev.list_sensors(status=Sensor.Status.WARN)] == ["fan-speed"]
    with pytest.raises(AttributeError, match="no sensor 'nonesuch'"):
        dev.sensor.nonesuch  # noqa: B018
    assert "nonesuch" not in dev.sensor
    assert not dev.sensor["nonesuch"].exists  # item access makes a placeholder


async def test_wait_value_predicate_timeout(dish: Dish, dev: RemoteDevice) -> None:
    azim = dev.sensor.drive_azim
    assert (await azim.wait(0.0)).value == 0.0  # the current reading counts
    waiter = asyncio.create_task(azim.wait(lambda r: r.value > 40, timeout=10))
    for value in (10.0, 30.0, 45.0):
        dish.sensors["drive.azim"].value = value
    reading = await waiter
    assert reading.value == 45.0
    await dev.req.point(90.0)
    assert (await dev.sensor.drive_mode.wait("tracking", timeout=5)).value == "tracking"
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(asyncio.TimeoutError, match=r"drive\.azim"):
        await azim.wait(-1.0, timeout=3)
    assert loop.time() - start == pytest.approx(3.0, abs=0.01)


async def sampling_of(dev: RemoteDevice, name: str) -> List[bytes]:
    reply, _ = await dev.request("sensor-sampling", name)
    return reply


async def test_listener_and_strategy_survive_restart(dish: Dish) -> None:
    port = dish.port
    async with RemoteDevice.connect("127.0.0.1", port, retry_initial=0.5) as dev:
        fan = dev.sensor.fan_speed
        seen: List[Tuple[RemoteSensor, Reading]] = []
        fan.add_listener(lambda sensor, reading: seen.append((sensor, reading)))
        await fan.set_strategy("event-rate", 0.5, 10)
        assert await sampling_of(dev, "fan-speed") == [b"fan-speed", b"event-rate", b"0.5", b"10.0"]
        # Before the sensor exists: remembered, applied when it appears.
        later = dev.sensor["later"]
        await later.set_strategy("period", 2)
        assert later.strategy == ("period", (2,))

        await dish.stop()
        await dev.wait_state(DeviceState.DISCONNECTED)
        assert fan.status is Sensor.Status.UNREACHABLE
        assert seen[-1][1].status is Sensor.Status.UNREACHABLE

        dish2 = Dish(port)
        dish2.sensors["fan-speed"].value = 555
        dish2.sensors.add(Sensor(int, "later", "Appears after the restart", default=1))
        await dish2.start()
        try:
            await dev.wait_synced(timeout=120)
            assert fan.value == 555 and fan.status is Sensor.Status.NOMINAL
            assert await sampling_of(dev, "fan-speed") == [
                b"fan-speed",
                b"event-rate",
                b"0.5",
                b"10.0",
            ]
            assert await sampling_of(dev, "later") == [b"later", b"period", b"2.0"]
            count = len(seen)
            dish2.sensors["fan-speed"].value = 777
            await fan.wait(777, timeout=5)
            assert len(seen) > count and seen[-1][0] is fan and seen[-1][1].value == 777

            fan.drop_strategy()
            assert fan.strategy is None
            await dish2.stop()
            await dev.wait_state(DeviceState.DISCONNECTED)
            async with running(Dish(port)):
                await dev.wait_synced(timeout=120)
                assert await sampling_of(dev, "fan-speed") == [b"fan-speed", b"auto"]
        finally:
            await dish2.stop()


async def test_sensor_removed_and_readded(dish: Dish, dev: RemoteDevice) -> None:
    """Listener and strategy are kept by name while the sensor is gone (#interface-changed)."""
    fan = dev.sensor["fan-speed"]
    seen: List[Reading] = []
    fan.add_listener(lambda sensor, reading: seen.append(reading))
    await fan.set_strategy("event-rate", 1, 5)
    old = dish.sensors["fan-speed"]
    dish.sensors.remove(old)
    dish.mass_inform("interface-changed")
    await dev.wait_state(DeviceState.SYNCING)
    await dev.wait_synced(timeout=10)
    assert not fan.exists and "fan-speed" not in dev.sensor
    assert [s.name for s in dev.list_sensors()] == ["drive.azim", "drive.mode"]
    assert dev.sensor["fan-speed"] is fan and fan.strategy == ("event-rate", (1, 5))

    dish.sensors.add(Sensor(int, "fan-speed", "Fan speed", "rpm", default=200))
    dish.mass_inform("interface-changed")
    await dev.wait_state(DeviceState.SYNCING)
    await dev.wait_synced(timeout=10)
    assert fan.exists and dev.sensor.fan_speed is fan
    assert await sampling_of(dev, "fan-speed") == [b"fan-speed", b"event-rate", b"1.0", b"5.0"]
    dish.sensors["fan-speed"].value = 201
    await fan.wait(201, timeout=10)
    assert seen[-1].value == 201


async def test_strategy_rejected_is_not_remembered(dev: RemoteDevice) -> None:
    with pytest.raises(FailReply):
        await dev.sensor.fan_speed.set_strategy("period")  # period needs a parameter
    assert dev.sensor.fan_speed.strategy is None


# -- inspection failures ---------------------------------------------------------------------


async def test_help_failure_surfaced_and_retried(dish: Dish) -> None:
    dish.fail_help = True
    dev = RemoteDevice("127.0.0.1", dish.port, retry_initial=1.0, retry_max=4.0)
    try:
        await dev.wait_state(DeviceState.FAILED, timeout=10)
        assert dev.inspection_error is not None
        assert "?help failed: help is broken" in str(dev.inspection_error)
        assert isinstance(dev.inspection_error.__cause__, FailReply)
        with pytest.raises(asyncio.TimeoutError, match="help is broken"):
            await dev.wait_synced(timeout=20)
        assert not dev.synced
        dish.fail_help = False
        await dev.wait_synced(timeout=10)  # retried with back-off
        assert dev.inspection_error is None
    finally:
        dev.close()
        await dev.wait_closed()
    assert dev.state is DeviceState.CLOSED


async def test_help_timeout_surfaced(dish: Dish) -> None:
    dish.hang_help = True
    dev = RemoteDevice("127.0.0.1", dish.port, inspect_timeout=5.0)
    try:
        await dev.wait_state(DeviceState.FAILED, timeout=10)
        assert "?help: no reply within 5.0 s" in str(dev.inspection_error)
    finally:
        dev.close()
        await dev.wait_closed()


async def test_sensor_list_failure_surfaced(dish: Dish) -> None:
    dish.fail_sensor_list = True
    dev = RemoteDevice("127.0.0.1", dish.port, inspect_timeout=5.0)
    try:
        await dev.wait_state(DeviceState.FAILED, timeout=30)
        assert "?sensor-list failed: sensor list is broken" in str(dev.inspection_error)
        dish.fail_sensor_list = False
        await dev.wait_synced(timeout=200)
        assert "fan-speed" in dev.sensor
    finally:
        dev.close()
        await dev.wait_closed()


async def test_failing_timeout_hints_only_warn(dish: Dish) -> None:
    dish.fail_hints = True
    async with RemoteDevice.connect("127.0.0.1", dish.port, timeout=30) as dev:
        assert dev.synced and dev.inspection_error is None
        assert dev.request_timeout("slew") is None
        assert "Default timeout" not in (dev.req.slew.__doc__ or "")


async def test_recovery_announced_by_interface_changed(dish: Dish) -> None:
    """A device that fixes itself and says so is synced at once, not after the back-off."""
    dish.fail_sensor_list = True
    dev = RemoteDevice("127.0.0.1", dish.port, inspect_timeout=5.0, retry_initial=1000.0)
    try:
        await dev.wait_state(DeviceState.FAILED, timeout=30)
        dish.fail_sensor_list = False
        dish.mass_inform("interface-changed")
        await dev.wait_synced(timeout=10)
        dish.fail_help = True
        dish.mass_inform("interface-changed")
        await dev.wait_state(DeviceState.FAILED, timeout=10)
        dish.fail_help = False
        dish.mass_inform("interface-changed")
        await dev.wait_synced(timeout=10)
    finally:
        dev.close()
        await dev.wait_closed()


async def test_connect_timeout_closes(dish: Dish) -> None:
    dish.fail_help = True
    with pytest.raises(asyncio.TimeoutError, match="not synced within 3"):
        await RemoteDevice.connect("127.0.0.1", dish.port, timeout=3)


async def test_no_auto_reconnect_gives_up() -> None:
    with pytest.raises(ConnectionAbortedError, match="is closed") as info:
        await RemoteDevice.connect("127.0.0.1", 1, auto_reconnect=False, timeout=30)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


async def test_closed_device_wakes_waiters(dev: RemoteDevice) -> None:
    waiter = asyncio.create_task(dev.sensor.fan_speed.wait(-5))
    state_waiter = asyncio.create_task(dev.wait_state(DeviceState.FAILED))
    await asyncio.sleep(0)
    dev.close()
    with pytest.raises(ConnectionAbortedError):
        await waiter
    with pytest.raises(ConnectionAbortedError):
        await state_waiter


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("RemoteDevice", "remote"),
        ("RemoteSensor", "remote"),
        ("DeviceState", "remote"),
        ("InspectionError", "remote"),
        ("DeviceGroup", "group"),
        ("GroupResult", "group"),
        ("QuorumTimeout", "group"),
        ("BlockingRemoteDevice", "remote_blocking"),
        ("BlockingRemoteSensor", "remote_blocking"),
        ("BlockingDeviceGroup", "remote_blocking"),
    ],
)
def test_public_names(name: str, module: str) -> None:
    obj = getattr(aiokatcp, name)
    assert name in aiokatcp.__all__
    assert obj.__module__ == f"aiokatcp.{module}"
    assert getattr(getattr(aiokatcp, module), name) is obj
    assert name in getattr(aiokatcp, module).__all__


# -- blocking proxy (threads) ----------------------------------------------------------------


def test_blocking_remote_device() -> None:
    """Threaded use: the device lives on a LoopThread, every call blocks (real sockets)."""
    with aiokatcp.LoopThread() as lt:

        async def start() -> Dish:
            server = Dish()
            await server.start()
            return server

        server = lt.run(start())
        try:
            port = server.port
            with aiokatcp.BlockingRemoteDevice.connect(
                "127.0.0.1", port, loop_thread=lt, timeout=30
            ) as dev:
                assert dev.state is DeviceState.SYNCED
                assert dev.req.point.__doc__ == "Point the dish to an azimuth (degrees)."
                assert dev.req.point(7.5) == [b"pointing", b"7.5"]
                with pytest.raises(FailReply, match="broken on purpose"):
                    dev.req["break"]()
                assert dev.sensor.drive_mode.wait("tracking", timeout=10).value == "tracking"
                assert dev.sensor["drive.azim"].value == 7.5
                seen: List[Reading] = []
                fan = dev.sensor.fan_speed
                fan.add_listener(lambda sensor, reading: seen.append(reading))
                fan.set_strategy("event")
                assert dev.request("sensor-sampling", "fan-speed")[0] == [b"fan-speed", b"event"]
                lt.call(setattr, server.sensors["fan-speed"], "value", 42)
                fan.wait(42, timeout=10)
                assert seen[-1].value == 42
                with pytest.raises(asyncio.TimeoutError):
                    fan.wait(-1, timeout=0.05)
                assert [s.name for s in dev.list_sensors(filter="fan")] == ["fan-speed"]

                async def from_loop() -> None:
                    with pytest.raises(RuntimeError):
                        dev.req.point(1.0)

                lt.run(from_loop())
            assert dev.state is DeviceState.CLOSED
        finally:
            lt.run(server.stop())
