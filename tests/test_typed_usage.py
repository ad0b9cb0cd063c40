"""Code written the way aiokatcp 2.3 users write it; CI runs ``mypy --strict`` over it.

Submodule imports, ``Sensor.Status`` annotations, ``sensor_value`` with a type,
a ``Client`` subclass with ``inform_*`` handlers, a ``SensorWatcher``
subclass. The test runs it against a real server, so it also has to work.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any, List, Optional, Tuple

import aiokatcp
from aiokatcp.client import AbstractSensorWatcher, Client, SensorWatcher, SyncState
from aiokatcp.connection import FailReply, InvalidReply
from aiokatcp.core import Address, Message, Timestamp
from aiokatcp.sensor import ClassicObserver, Reading, Sensor, SensorSet
from aiokatcp.server import DeviceServer, RequestContext


class Mode(enum.Enum):
    IDLE = 1
    BUSY = 2


class Device(DeviceServer):
    VERSION = "typed-1.0"
    BUILD_STATE = "typed-1.0.0"

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0)
        self.listed = 0
        self.sensors.add(
            Sensor(int, "count", "a counter", default=3, initial_status=Sensor.Status.NOMINAL)
        )
        self.sensors.add(
            Sensor(
                Mode, "mode", "the mode", default=Mode.IDLE, initial_status=Sensor.Status.NOMINAL
            )
        )

    async def request_bump(self, ctx: RequestContext, by: int = 1) -> int:
        """Increase the counter."""
        sensor: Sensor[int] = self.sensors["count"]
        sensor.value += by
        ctx.inform(sensor.value)
        return sensor.value

    async def request_sensor_list(self, ctx: RequestContext, name: Optional[str] = None) -> int:
        """List sensors (an override that uses the count, as 2.x code does)."""
        count: int = await super().request_sensor_list(ctx, name)
        self.listed = count
        return count


def on_update(sensor: Sensor[int], reading: Reading[int]) -> None:
    pass


OBSERVER: ClassicObserver[int] = on_update


def worst(statuses: List[Sensor.Status]) -> Sensor.Status:
    return max(statuses, default=Sensor.Status.UNKNOWN)


class MyClient(Client):
    def __init__(self, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self.logs: List[Tuple[str, str]] = []

    def inform_log(self, level: bytes, timestamp: bytes, name: bytes, *message: bytes) -> None:
        self.logs.append((level.decode(), b" ".join(message).decode()))

    def inform_interface_changed(self, *args: bytes) -> None:
        pass


class StatusCounter(AbstractSensorWatcher):
    def __init__(self) -> None:
        self.updates = 0
        self.last_status: Optional[Sensor.Status] = None

    def sensor_updated(
        self, name: str, value: bytes, status: Sensor.Status, timestamp: float
    ) -> None:
        self.updates += 1
        self.last_status = status

    def state_updated(self, state: SyncState) -> None:
        pass


async def use(port: int) -> Tuple[int, Reading[int], Mode, Sensor.Status]:
    client: MyClient = await MyClient.connect("127.0.0.1", port)
    async with client:
        count: int = await client.sensor_value("count", int)
        reading: Reading[int] = await client.sensor_reading("count", int)
        listed, _ = await client.request("sensor-list")
        assert listed == [b"2"]
        reply, informs = await client.request("bump", 2)
        msgs: List[Message] = informs
        assert int(reply[0]) == count + 2 and msgs[0].name == "bump"
        try:
            await client.request("no-such-request")
        except (FailReply, InvalidReply) as exc:
            assert str(exc)
        watcher = SensorWatcher(client, enum_types=[Mode])
        counter = StatusCounter()
        client.add_sensor_watcher(watcher)
        client.add_sensor_watcher(counter)
        await watcher.synced.wait()
        same: Client = watcher.client  # the watcher's client keeps its type
        assert same is client
        sensors: SensorSet = watcher.sensors
        mode_sensor: Optional[Sensor[object]] = sensors.get("mode")
        assert mode_sensor is not None
        mode = mode_sensor.value
        assert isinstance(mode, Mode)
        status = worst([s.status for s in sensors.values()])
        _ = (Address, Timestamp, aiokatcp.Sensor.Status.NOMINAL)
        return count, reading, mode, status


async def test_typed_usage() -> None:
    server = Device()
    await server.start()
    try:
        # As in 2.3, DeviceServer.server is Optional[asyncio.Server]: .sockets type-checks.
        listener: Optional[asyncio.Server] = server.server
        assert listener is not None
        sockets = listener.sockets
        port = sockets[0].getsockname()[1]
        assert server.server is not None and server.server.is_serving()
        count, reading, mode, status = await use(port)
        assert count == 3 and reading.value == 3
        assert mode is Mode.IDLE
        assert status is Sensor.Status.NOMINAL
        assert server.listed == 2
    finally:
        await server.stop()


def test_public_modules() -> None:
    # What mypy, IDEs, reprs and Sphinx show: the public 2.x module paths.
    assert Message.__module__ == "aiokatcp.core"
    assert Address.__module__ == "aiokatcp.core"
    assert FailReply.__module__ == "aiokatcp.connection"
    assert aiokatcp.ProtocolError.__module__ == "aiokatcp.client"
    assert SensorWatcher.__module__ == "aiokatcp.client"
    assert aiokatcp.SensorSampler.__module__ == "aiokatcp.sensor"
    assert aiokatcp.SensorSampler.Strategy.__module__ == "aiokatcp.sensor"
    assert aiokatcp.SensorSampler.Strategy.__qualname__ == "SensorSampler.Strategy"
    assert aiokatcp.RequestContext.__module__ == "aiokatcp.server"
    assert repr(Message.Type.REQUEST) == "<MessageType.REQUEST: 1>"
    for func in (aiokatcp.encode, aiokatcp.decode, aiokatcp.get_type, aiokatcp.register_type):
        assert func.__module__ == "aiokatcp.core"
    assert aiokatcp.connection.wrap_handler.__module__ == "aiokatcp.connection"


if __name__ == "__main__":
    asyncio.run(test_typed_usage())
