"""A typical aiokatcp 2.x client, run against ``device.py`` (under either implementation).

Usage: python client_script.py PORT  -- prints one line per observation.
"""

import asyncio
import enum
import sys
from typing import List

import aiokatcp
from aiokatcp import Address, Timestamp


class Colour(enum.Enum):
    RED = 1
    DARK_GREEN = 2
    BLUE = 3


class MyClient(aiokatcp.Client):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: List[str] = []

    def inform_broadcast(self, text: str, n: int) -> None:
        self.seen.append(f"inform_broadcast {text!r} {n!r}")


class Watcher(aiokatcp.AbstractSensorWatcher):
    def __init__(self) -> None:
        self.events: List[str] = []

    def sensor_added(self, name, description, units, type_name, *args) -> None:
        self.events.append(f"added {name} {type_name} {args}")

    def sensor_updated(self, name, value, status, timestamp) -> None:
        self.events.append(f"updated {name} {value!r} {status.name}")

    def state_updated(self, state) -> None:
        self.events.append(f"state {state.name}")


def show(*parts: object) -> None:
    print(*parts, flush=True)


async def main(port: int) -> None:
    client = await MyClient.connect("127.0.0.1", port)
    show("flags", sorted(client.protocol_flags), client.is_connected)
    show("add", await client.request("add", 2, 3))
    reply, informs = await client.request("list", 2)
    show("list", reply, [(m.name, m.arguments) for m in informs])
    for req, args in [
        ("fail", ()),
        ("invalid", ()),
        ("nosuch", ()),
        ("add", ("x",)),
        ("add", (1, 2, 3)),
        ("sensor-list", ("nosuch",)),
    ]:
        try:
            await client.request(req, *args)
        except (aiokatcp.FailReply, aiokatcp.InvalidReply) as exc:
            show("error", req, type(exc).__name__, repr(str(exc)))
    try:
        await client.request("crash")
    except aiokatcp.FailReply as exc:
        show("crash", str(exc).splitlines()[0], str(exc).splitlines()[-1])
    reply_msg, informs = await client.request_raw("talk")
    show("talk raw", bytes(reply_msg), [bytes(m) for m in informs])
    await asyncio.sleep(0.05)
    show("seen", client.seen)
    callbacks: List[str] = []
    client.add_inform_callback("broadcast", lambda *a: callbacks.append(repr(a)))
    await client.request("talk")
    await asyncio.sleep(0.05)
    show("callbacks", callbacks)
    for name, stype in [
        ("counter", int),
        ("temp", float),
        ("ok-flag", bool),
        ("label", str),
        ("raw", bytes),
        ("colour", Colour),
        ("when", Timestamp),
        ("addr", Address),
        ("device-status", aiokatcp.DeviceStatus),
    ]:
        for label, call in [
            ("typed", client.sensor_value(name, stype)),
            ("untyped", client.sensor_value(name)),
            ("reading", client.sensor_reading(name)),
        ]:
            try:
                value = await call
            except Exception as exc:
                show("sensor", name, label, type(exc).__name__, repr(str(exc)))
            else:
                show("sensor", name, label, repr(value), type(value).__name__)
    for bad in ["nosuch", "/e/"]:
        try:
            await client.sensor_value(bad)
        except Exception as exc:
            show("sensor error", bad, type(exc).__name__, repr(str(exc)))
    try:
        await client.sensor_value("counter", Colour)
    except Exception as exc:
        show("sensor error typed", type(exc).__name__, repr(str(exc)))
    watcher = Watcher()
    client.add_sensor_watcher(watcher)
    sw = aiokatcp.SensorWatcher(client, enum_types=[Colour])
    client.add_sensor_watcher(sw)
    await sw.synced.wait()
    await client.request("set-counter", 9)
    await client.request("paint", "blue")
    await asyncio.sleep(0.2)
    show("watcher", sorted(set(watcher.events)))
    for name in sorted(sw.sensors):
        s = sw.sensors[name]
        show(
            "mirror",
            name,
            s.stype.__name__ if isinstance(s.stype, type) else s.stype,
            repr(s.value),
            s.status.name,
            s.description,
            s.units,
        )
    watcher.events.clear()
    await client.request("add-sensor", "extra")
    await asyncio.sleep(0.3)
    await client.request("remove-sensor", "temp")
    await asyncio.sleep(0.3)
    show("watcher after interface change", watcher.events)
    show(
        "mirror after interface change",
        sorted(sw.sensors),
        repr(
            sw.sensors["remote.extra"].value
            if "remote.extra" in sw.sensors
            else sw.sensors["extra"].value
        ),
    )
    mode = sw.sensors["mode"]
    show("mirror mode members", [(m.name, m.value) for m in mode.stype])
    client.close()
    await client.wait_closed()
    show("closed", client.is_connected, repr(client.last_exc))
    try:
        await client.request("watchdog")
    except Exception as exc:
        show("after close", type(exc).__name__, repr(str(exc)))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
