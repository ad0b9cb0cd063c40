"""Benchmark client process, run with the interpreter whose aiokatcp is being measured.

Usage::

    python impl_client.py client --port P [--serial N] [--concurrency C] [--batches B]
    python impl_client.py watcher --port P --sensors N --rounds R
    python impl_client.py watcher-add --port P --sensors N

Connects to a raw-asyncio server started by ``scenarios.py`` and prints one JSON line
with the measurements (wall time from :func:`time.perf_counter`, CPU time of this
process from :func:`time.process_time`).

``client``
    ``Client.request("echo", ...)`` serially, then in batches of ``C`` concurrent requests
    (``asyncio.gather``).
``watcher``
    Attach an ``aiokatcp.SensorWatcher`` to a connected client and time until ``synced`` is
    set; then ask the server (``?bench-push R``) to send R rounds of updates for every
    sensor and time until the mirrored sensors hold the last value.
``watcher-add``
    With one ``SensorWatcher`` already mirroring every sensor, time adding a second one
    (until it is ``synced``) and count the requests the client sends meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any, Dict, List

import _benchutil

import aiokatcp

TIMEOUT = 120.0


async def bench_client(args: argparse.Namespace) -> Dict[str, Any]:
    m = _benchutil.Metrics()
    client = await aiokatcp.Client.connect(_benchutil.HOST, args.port)
    try:
        request_args = (b"hello", 42, 2.5)
        reply, _ = await client.request("echo", *request_args)
        bad_replies = int(reply != [b"hello", b"42", b"2.5"])
        for _ in range(args.serial // 10):  # warm-up
            await client.request("echo", *request_args)

        latencies: List[float] = []
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(args.serial):
            t = time.perf_counter()
            await client.request("echo", *request_args)
            latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        m.add("serial_rps", args.serial / elapsed, "req/s")
        m.add("serial_p50_us", _benchutil.percentile(latencies, 50) * 1e6, "us")
        m.add("serial_p99_us", _benchutil.percentile(latencies, 99) * 1e6, "us")
        m.add("serial_client_cpu_us", cpu / args.serial * 1e6, "us/req")

        batch_times: List[float] = []
        conc = args.concurrency
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(args.batches):
            t = time.perf_counter()
            replies = await asyncio.gather(
                *(client.request("echo", b"hello", i) for i in range(conc))
            )
            batch_times.append(time.perf_counter() - t)
            bad_replies += sum(r[0] != [b"hello", str(i).encode()] for i, r in enumerate(replies))
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        total = conc * args.batches
        m.add("concurrent_rps", total / elapsed, "req/s")
        m.add("concurrent_batch_p50_ms", _benchutil.percentile(batch_times, 50) * 1e3, "ms")
        m.add("concurrent_batch_max_ms", max(batch_times) * 1e3, "ms")
        m.add("concurrent_client_cpu_us", cpu / total * 1e6, "us/req")
        m.add("bad_replies", bad_replies, "count")
    finally:
        client.close()
        await client.wait_closed()
    return {**m.as_dict(), "params": vars(args)}


async def bench_watcher(args: argparse.Namespace) -> Dict[str, Any]:
    m = _benchutil.Metrics()
    names = _benchutil.sensor_names(args.sensors)
    client = await aiokatcp.Client.connect(_benchutil.HOST, args.port)
    try:
        watcher = aiokatcp.SensorWatcher(client)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        client.add_sensor_watcher(watcher)
        await asyncio.wait_for(watcher.synced.wait(), TIMEOUT)
        m.add("sync_s", time.perf_counter() - t0, "s")
        m.add("sync_cpu_s", time.process_time() - cpu0, "s")
        missing = sum(name not in watcher.sensors for name in names)

        final = args.rounds
        last_name = names[-1]
        done = asyncio.Event()
        applied = 0

        def observer(sensor: aiokatcp.Sensor[Any], reading: aiokatcp.Reading[Any]) -> None:
            nonlocal applied
            applied += 1
            if reading.value == final and sensor.name == last_name:
                done.set()

        mirrored = [watcher.sensors[name] for name in names if name in watcher.sensors]
        for sensor in mirrored:
            sensor.attach(observer)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        await client.request("bench-push", args.rounds)
        try:
            await asyncio.wait_for(done.wait(), TIMEOUT)
        except asyncio.TimeoutError:
            pass
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        for sensor in mirrored:
            sensor.detach(observer)
        m.add("updates_per_s", applied / elapsed, "upd/s")
        m.add("client_cpu_us_per_update", cpu / max(applied, 1) * 1e6, "us")
        m.add("missing_sensors", missing, "count")
        m.add("wrong_final_values", sum(s.value != final for s in mirrored), "count")
        m.add("missing_updates", len(mirrored) * final - applied, "count")
    finally:
        client.close()
        await client.wait_closed()
    return {**m.as_dict(), "params": vars(args)}


class _BareWatcher(aiokatcp.AbstractSensorWatcher):
    def __init__(self) -> None:
        self.added = 0
        self.synced = asyncio.Event()

    def sensor_added(self, name: str, *args: Any) -> None:
        self.added += 1

    def state_updated(self, state: aiokatcp.SyncState) -> None:
        if state == aiokatcp.SyncState.SYNCED:
            self.synced.set()


async def bench_watcher_add(args: argparse.Namespace) -> Dict[str, Any]:
    m = _benchutil.Metrics()
    client = await aiokatcp.Client.connect(_benchutil.HOST, args.port)
    try:
        first = aiokatcp.SensorWatcher(client)
        client.add_sensor_watcher(first)
        await asyncio.wait_for(first.synced.wait(), TIMEOUT)
        sent: List[str] = []
        request = client.request

        async def counting(name: str, *request_args: Any, **kwargs: Any) -> Any:
            sent.append(name)
            return await request(name, *request_args, **kwargs)

        client.request = counting  # type: ignore[method-assign]
        second = aiokatcp.SensorWatcher(client)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        client.add_sensor_watcher(second)
        await asyncio.wait_for(second.synced.wait(), TIMEOUT)
        m.add("add_ms", (time.perf_counter() - t0) * 1e3, "ms")
        m.add("add_cpu_ms", (time.process_time() - cpu0) * 1e3, "ms")
        # The client's own share: a watcher that does no work of its own per sensor.
        bare = _BareWatcher()
        t0 = time.perf_counter()
        client.add_sensor_watcher(bare)
        await asyncio.wait_for(bare.synced.wait(), TIMEOUT)
        m.add("add_bare_ms", (time.perf_counter() - t0) * 1e3, "ms")
        m.add("bare_missing_sensors", len(first.sensors) - bare.added, "count")
        m.add("sensor_list_requests", sent.count("sensor-list"), "count")
        m.add("requests_sent", len(sent), "count")
        m.add("missing_sensors", len(first.sensors) - len(second.sensors), "count")
    finally:
        client.close()
        await client.wait_closed()
    return {**m.as_dict(), "params": vars(args)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["client", "watcher", "watcher-add"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--serial", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    bench = {"client": bench_client, "watcher": bench_watcher, "watcher-add": bench_watcher_add}[
        args.mode
    ]
    result = asyncio.run(bench(args))
    _benchutil.emit_json({"version": aiokatcp.__version__, "python": sys.executable, **result})


if __name__ == "__main__":
    main()
