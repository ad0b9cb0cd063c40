"""2.x-style typed code: must pass ``mypy --strict`` against 2.3 and against us.

Check: mypy --strict --python-executable <python with aiokatcp> typed_2x.py
(not run, only type-checked).
"""

import asyncio
import enum
import logging
from types import TracebackType
from typing import Any, List, Optional, Tuple, Type

import aiokatcp
from aiokatcp import (
    AggregateSensor,
    Client,
    DeviceServer,
    Reading,
    RequestContext,
    Sensor,
    SensorSampler,
    SensorSet,
    SensorWatcher,
    SimpleAggregateSensor,
)
from aiokatcp.core import LogLevel, Message


class Mode(enum.Enum):
    A = 1
    B = 2


class Dev(DeviceServer):
    VERSION = "v"
    BUILD_STATE = "b"

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port, limit=1000, max_pending=5, max_backlog=None)
        s: Sensor[int] = Sensor(int, "x", "d", "u", default=1, initial_status=Sensor.Status.NOMINAL)
        s.attach(self._observe)
        s.attach(self._delta)
        self.sensors.add(s)
        self.sensors.add(
            Sensor(
                float,
                "y",
                auto_strategy=SensorSampler.Strategy.PERIOD,
                auto_strategy_parameters=(1.0,),
            )
        )
        t: asyncio.Task[None] = asyncio.get_event_loop().create_task(asyncio.sleep(1))
        self.add_service_task(t)

    def _observe(self, sensor: Sensor[int], reading: Reading[int]) -> None:
        pass

    def _delta(
        self, sensor: Sensor[int], reading: Reading[int], *, old_reading: Reading[int]
    ) -> None:
        pass

    async def request_go(self, ctx: RequestContext, mode: Mode, n: int = 1) -> Tuple[int, str]:
        """Go."""
        ctx.inform("going", mode)
        ctx.informs([("a", 1)], send_reply=False)
        await ctx.drain()
        return n, "x"

    async def request_sensor_list(self, ctx: RequestContext, name: Optional[str] = None) -> int:
        """List."""
        return await super().request_sensor_list(ctx, name)

    async def request_log_level(
        self, ctx: RequestContext, level: Optional[LogLevel] = None
    ) -> LogLevel:
        """Log level."""
        return await super().request_log_level(ctx, level)

    async def unhandled_request(self, ctx: RequestContext, req: Message) -> None:
        raise aiokatcp.InvalidReply("no")

    async def on_stop(self) -> None:
        self.mass_inform("bye")

    def status(self) -> Sensor.Status:
        return self.sensors["x"].status


class Total(SimpleAggregateSensor[int]):
    def __init__(self, target: SensorSet) -> None:
        self.total = 0
        super().__init__(target, int, "total")

    def aggregate_add(self, sensor: Sensor[Any], reading: Reading[Any]) -> bool:
        self.total += reading.value
        return True

    def aggregate_remove(self, sensor: Sensor[Any], reading: Reading[Any]) -> bool:
        self.total -= reading.value
        return True

    def aggregate_compute(self) -> Tuple[Sensor.Status, int]:
        return Sensor.Status.NOMINAL, self.total


class Latest(AggregateSensor[float]):
    def update_aggregate(
        self,
        updated_sensor: Optional[Sensor[Any]],
        reading: Optional[Reading[Any]],
        old_reading: Optional[Reading[Any]],
    ) -> Optional[Reading[float]]:
        return None


class MyClient(Client):
    def inform_thing(self, x: int, y: Optional[str] = None) -> None:
        self.logger.info("thing %d %s", x, y)

    def unhandled_inform(self, msg: Message) -> None:
        super().unhandled_inform(msg)

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await super().__aexit__(exc_type, exc, tb)


class MyWatcher(SensorWatcher):
    def rewrite_name(self, name: str) -> str:
        return "remote." + name

    def sensor_updated(
        self, name: str, value: bytes, status: Sensor.Status, timestamp: float
    ) -> None:
        super().sensor_updated(name, value, status, timestamp)


async def main() -> None:
    client = await MyClient.connect("127.0.0.1", 1234, auto_reconnect=False)
    reply, informs = await client.request("go", Mode.A, 3)
    first: bytes = reply[0]
    names: List[str] = [m.name for m in informs]
    msg, _ = await client.request_raw("go")
    ok: bool = msg.reply_ok()
    value: int = await client.sensor_value("x", int)
    reading: Reading[float] = await client.sensor_reading("y", float)
    anything: Any = await client.sensor_value("y")
    watcher = MyWatcher(client, enum_types=[Mode])
    client.add_sensor_watcher(watcher)
    await watcher.synced.wait()
    got: Optional[Sensor[Any]] = watcher.sensors.get("remote.x")
    client.add_connected_callback(lambda: None)
    client.add_failed_connect_callback(lambda exc: None)
    client.add_inform_callback("thing", lambda *args: None)
    try:
        await client.request("fail")
    except aiokatcp.FailReply as exc:
        logging.warning("%s", exc)
    client.close()
    await client.wait_closed()
    async with MyClient("127.0.0.1", 1234) as c2:
        await c2.wait_connected()
    server = Dev("127.0.0.1", 0)
    await server.start()
    sock_name = server.sockets[0].getsockname()
    server.sensors.add(Total(server.sensors))
    halt_task: asyncio.Task[None] = server.halt()
    await halt_task
    await server.join()
    print(first, names, ok, value, reading, anything, got, sock_name)


class Celsius(float):
    pass


def registry_and_values(client: Client, ctx: RequestContext, server: DeviceServer) -> None:
    aiokatcp.register_type(
        Celsius, "celsius", lambda v: repr(float(v)).encode(), lambda cls: lambda raw: cls(raw)
    )
    info: aiokatcp.TypeInfo[int] = aiokatcp.get_type(int)
    n: int = aiokatcp.decode(int, b"1")
    raw: bytes = aiokatcp.encode(3)
    m = Message.parse(b"?x 1\n")
    args: List[bytes] = m.arguments
    req = Message.request("x", 1, mid=2)
    rep = Message.reply_to_request(req, "ok")
    flags = client.protocol_flags
    last: Optional[Exception] = client.last_exc
    addr: aiokatcp.Address = ctx.conn.address
    host = addr.host
    port: Optional[int] = addr.port
    srv = server.server
    tasks: Tuple[asyncio.Task[Any], ...] = server.service_tasks
    level = LogLevel.from_python(logging.INFO)
    ts = aiokatcp.Timestamp(1.0)
    now: aiokatcp.TimestampOrNow = aiokatcp.Now.NOW
    print(info, n, raw, args, rep, flags, last, host, port, srv, tasks, level, ts, now)
    sampler = SensorSampler.factory(
        server.sensors["x"], None, asyncio.get_event_loop(), SensorSampler.Strategy.EVENT
    )
    if sampler is not None:
        params: Tuple[Any, ...] = sampler.parameters()
        sampler.close()
        print(params)
