"""Benchmark device server, run with the interpreter whose aiokatcp is being measured.

Usage: ``python impl_server.py [--sensors N] [--max-backlog BYTES]``

Uses only the public aiokatcp API. Prints one JSON line ``{"port": ..., "version": ...}``
once listening on 127.0.0.1 (ephemeral port), then reads JSON commands from stdin, one per
line, and answers each with one JSON line on stdout:

``{"cmd": "stats"}``
    ``{"cpu": <process CPU seconds>, "rss_kib": <VmRSS>}``
``{"cmd": "update", "rounds": R, "yield_every": N}``
    Set every sensor to 1, 2, ..., R in turn (each sensor incremented in sequence), as fast
    as possible, yielding to the event loop every N updates and waiting for the write
    buffers of registered connections (see ``?bench-register``) to drain. Answers
    ``{"updates": ..., "elapsed": ..., "cpu": ...}`` once all values have been set.

The server stops when stdin is closed, or on SIGTERM/SIGINT.

No ``from __future__ import annotations`` here: aiokatcp 2.3 reads the request handlers'
annotations as objects and does not resolve string annotations.
"""

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import _benchutil

import aiokatcp


class BenchServer(aiokatcp.DeviceServer):
    VERSION = "bench-api-1.0"
    BUILD_STATE = "bench-1.0.0"

    def __init__(self, n_sensors: int, max_backlog: Optional[int]) -> None:
        super().__init__(_benchutil.HOST, 0, max_backlog=max_backlog)
        self.registered: List[aiokatcp.RequestContext] = []
        self.bench_sensors: List[aiokatcp.Sensor[int]] = []
        for name in _benchutil.sensor_names(n_sensors):
            sensor = aiokatcp.Sensor(int, name, "Benchmark counter")
            sensor.value = 0
            self.sensors.add(sensor)
            self.bench_sensors.append(sensor)

    async def request_echo(self, ctx: aiokatcp.RequestContext, *args: bytes) -> Tuple[bytes, ...]:
        """Return the arguments unchanged."""
        return args

    async def request_add(self, ctx: aiokatcp.RequestContext, x: int, y: int) -> int:
        """Return the sum of two integers."""
        return x + y

    async def request_sleep(self, ctx: aiokatcp.RequestContext, delay: float) -> None:
        """Wait `delay` seconds (the slow request of the ``mixed`` scenario)."""
        await asyncio.sleep(delay)

    async def request_bench_register(self, ctx: aiokatcp.RequestContext) -> None:
        """Drain this connection during the update loop (benchmark flow control)."""
        self.registered.append(ctx)

    async def update_sensors(self, rounds: int, yield_every: int) -> Dict[str, Any]:
        sensors = self.bench_sensors
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        updates = 0
        for value in range(1, rounds + 1):
            for sensor in sensors:
                sensor.value = value
                updates += 1
                if updates % yield_every == 0:
                    await asyncio.sleep(0)
                    for ctx in self.registered:
                        await ctx.drain()
        return {
            "updates": updates,
            "elapsed": time.perf_counter() - t0,
            "cpu": time.process_time() - cpu0,
        }


async def control_loop(server: BenchServer, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_benchutil.STREAM_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while not stop.is_set():
        line = await reader.readline()
        if not line:
            break
        cmd: Dict[str, Any] = json.loads(line)
        reply: Dict[str, Any]
        if cmd["cmd"] == "stats":
            reply = {"cpu": time.process_time(), "rss_kib": _benchutil.rss_kib()}
        elif cmd["cmd"] == "update":
            reply = await server.update_sensors(int(cmd["rounds"]), int(cmd["yield_every"]))
        else:
            reply = {"error": f"unknown command {cmd['cmd']!r}"}
        _benchutil.emit_json(reply)
    stop.set()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=0)
    parser.add_argument("--max-backlog", type=int, default=None)
    args = parser.parse_args()
    _benchutil.raise_nofile_limit()

    server = BenchServer(args.sensors, args.max_backlog)
    await server.start()
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _benchutil.emit_json({"port": port, "version": aiokatcp.__version__, "python": sys.executable})
    control = asyncio.ensure_future(control_loop(server, stop))
    await stop.wait()
    control.cancel()
    await asyncio.gather(control, return_exceptions=True)
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
