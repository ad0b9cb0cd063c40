"""Check that aiokatcp runs unchanged on uvloop (not a benchmark; uvloop is not a dependency).

Usage::

    pip install uvloop          # into the environment under test, if it is not there
    python benchmarks/uvloop_check.py

Runs a ``DeviceServer``, a ``Client`` (serial and concurrent requests, a request with an
inform that really waits), a ``SensorWatcher`` following 100 updates, and 200 raw
connections, all on a uvloop event loop, and prints ``OK ...`` or fails with an
exception. Throughputs are printed for information only.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Tuple

import uvloop  # type: ignore[import-not-found,unused-ignore]

import aiokatcp


class CheckServer(aiokatcp.DeviceServer):
    VERSION = "uvloop-check-1.0"
    BUILD_STATE = "uvloop-check-1.0.0"

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0)
        self.counter = aiokatcp.Sensor(int, "counter", "a counter")
        self.counter.value = 0
        self.sensors.add(self.counter)

    async def request_echo(self, ctx: aiokatcp.RequestContext, *args: bytes) -> Tuple[bytes, ...]:
        """Return the arguments."""
        return args

    async def request_slow(self, ctx: aiokatcp.RequestContext, delay: float) -> str:
        """Send an inform, sleep, then reply."""
        ctx.inform("sleeping")
        await asyncio.sleep(delay)
        return "done"


async def main() -> None:
    loop = asyncio.get_running_loop()
    assert type(loop).__module__.startswith("uvloop"), type(loop)
    server = CheckServer()
    await server.start()
    port = server.port
    client = await aiokatcp.Client.connect("127.0.0.1", port)
    try:
        reply, _ = await client.request("echo", b"a b", 3)
        assert reply == [b"a b", b"3"], reply

        t0 = time.perf_counter()
        for i in range(2000):
            await client.request("echo", b"x", i)
        serial = 2000 / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        for _ in range(10):
            replies: Any = await asyncio.gather(*(client.request("echo", i) for i in range(256)))
            assert [r[0] for r in replies] == [[str(i).encode()] for i in range(256)]
        concurrent = 2560 / (time.perf_counter() - t0)

        reply, informs = await client.request("slow", 0.05)
        assert reply == [b"done"] and informs[0].arguments == [b"sleeping"]

        watcher = aiokatcp.SensorWatcher(client)
        client.add_sensor_watcher(watcher)
        await asyncio.wait_for(watcher.synced.wait(), 5)
        for value in range(1, 101):
            server.counter.value = value
        for _ in range(500):
            if watcher.sensors["counter"].value == 100:
                break
            await asyncio.sleep(0.01)
        assert watcher.sensors["counter"].value == 100

        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(200)]
        for _, writer in conns:
            writer.write(b"?watchdog[1]\n")
        for reader, writer in conns:
            while not (await asyncio.wait_for(reader.readline(), 5)).startswith(b"!watchdog[1] ok"):
                pass
            writer.close()
    finally:
        client.close()
        await client.wait_closed()
        await server.stop()
    print(
        f"OK: aiokatcp {aiokatcp.__version__} on uvloop {uvloop.__version__} "
        f"({type(loop).__module__}.{type(loop).__name__}): serial {serial:,.0f} req/s, "
        f"concurrent {concurrent:,.0f} req/s; request informs, SensorWatcher, "
        "200 raw connections"
    )


if __name__ == "__main__":
    if hasattr(uvloop, "run"):  # uvloop >= 0.18
        uvloop.run(main())
    else:
        uvloop.install()
        asyncio.run(main())
