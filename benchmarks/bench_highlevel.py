#!/usr/bin/env python3
"""High-level client at scale: a DeviceGroup of many devices in one process.

Usage::

    python benchmarks/bench_highlevel.py [--devices 150] [--sensors 200] [--repeat 20] [--quick]

Starts ``--devices`` device servers with ``--sensors`` sensors each on
127.0.0.1 in a child process (the devices are remote in real life; with
``--same-process`` they share this process and event loop with the clients),
then, with one :class:`aiokatcp.DeviceGroup` in this process, measures:

* ``synced``: from creating the :class:`aiokatcp.DeviceGroup` until every
  member is synced (connected, ``?help`` and ``?request-timeout-hint``
  inspected, every sensor listed and subscribed with ``auto``);
* ``group request``: ``group.request("watchdog")`` to every member, repeated
  ``--repeat`` times (median and worst reported);
* ``group wait`` (``--same-process`` only): one sensor set on every
  server, until ``group.wait`` sees it on all members.

Targets (issue 14): synced within 3 s, group request within 100 ms for
150 devices x 200 sensors. This is a benchmark, not a test: it prints the
figures and says whether the targets were met.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import aiokatcp

SYNC_TARGET = 3.0
REQUEST_TARGET = 0.100


class BenchDevice(aiokatcp.DeviceServer):
    VERSION = "bench-1.0"
    BUILD_STATE = "bench-1.0.0"

    def __init__(self, sensors: int) -> None:
        super().__init__("127.0.0.1", 0)
        for i in range(sensors):
            self.sensors.add(aiokatcp.Sensor(float, f"bench.sensor-{i:05d}", "A float", "V"))
        self.sensors.add(aiokatcp.Sensor(int, "bench.marker", "Set by the benchmark", default=0))

    async def request_noop(self, ctx: aiokatcp.RequestContext) -> None:
        """Do nothing."""


async def serve(devices: int, sensors: int) -> None:
    """Child process: run the servers, print their ports, stop when stdin closes."""
    servers = [BenchDevice(sensors - 1) for _ in range(devices)]
    for server in servers:
        await server.start()
    ports = [server.port for server in servers]
    print(json.dumps(ports), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for server in servers:
        await server.stop()


async def start_child(devices: int, sensors: int) -> Tuple[asyncio.subprocess.Process, List[int]]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        os.path.abspath(__file__),
        "--serve",
        "--devices",
        str(devices),
        "--sensors",
        str(sensors),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    line = await child.stdout.readline()
    return child, json.loads(line)


async def run(devices: int, sensors: int, repeat: int, same_process: bool) -> bool:
    servers: List[BenchDevice] = []
    child: Optional[asyncio.subprocess.Process] = None
    if same_process:
        servers = [BenchDevice(sensors - 1) for _ in range(devices)]
        for server in servers:
            await server.start()
        ports = [server.port for server in servers]
    else:
        child, ports = await start_child(devices, sensors)
    waited: Optional[float] = None
    try:
        members: Dict[str, Tuple[str, int]] = {
            f"d{i:03d}": ("127.0.0.1", port) for i, port in enumerate(ports)
        }
        gc.collect()
        start = time.perf_counter()
        cpu_start = time.process_time()
        async with aiokatcp.DeviceGroup(members, inspect_timeout=60) as group:
            await group.wait_synced(timeout=120)
            synced = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
            assert all(len(dev.sensor) == sensors for dev in group.members.values())

            times: List[float] = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                result = await group.request("watchdog")
                times.append(time.perf_counter() - t0)
                assert result.ok, result
            median = statistics.median(times)
            worst = max(times)

            if servers:
                t0 = time.perf_counter()
                for server in servers:
                    server.sensors["bench.marker"].value = 1
                await group.wait("bench.marker", 1, timeout=60)
                waited = time.perf_counter() - t0
    finally:
        for server in servers:
            await server.stop()
        if child is not None:
            assert child.stdin is not None
            child.stdin.close()
            await child.wait()

    where = "servers in this process" if same_process else "servers in a child process"
    print(f"{devices} devices x {sensors} sensors, one client process ({where})")
    print(
        f"  synced:        {synced:.3f} s, {cpu:.3f} s CPU in this process "
        f"(target <= {SYNC_TARGET} s)"
    )
    print(
        f"  group request: median {median * 1e3:.1f} ms, worst {worst * 1e3:.1f} ms "
        f"over {repeat}  (target <= {REQUEST_TARGET * 1e3:.0f} ms)"
    )
    if waited is not None:
        print(f"  group wait:    {waited * 1e3:.1f} ms (one update on every member)")
    ok = synced <= SYNC_TARGET and median <= REQUEST_TARGET
    print("  targets:", "met" if ok else "MISSED")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=150)
    parser.add_argument("--sensors", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (5)")
    parser.add_argument("--same-process", action="store_true", help="servers in this process")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.devices, args.sensors))
        return
    repeat = 5 if args.quick else args.repeat
    ok = asyncio.run(run(args.devices, args.sensors, repeat, args.same_process))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
