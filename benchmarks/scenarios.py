"""Benchmark scenarios: each one measures one implementation and prints one JSON line.

Usage: ``python benchmarks/scenarios.py NAME [--python PATH] [--quick]``

This process is the *load generator* (or, for the client-side scenarios, the peer server)
and uses only the standard library: raw asyncio streams and protocols, byte-level KATCP.
It never imports aiokatcp, so the load is identical whichever implementation is measured.
The implementation under test runs in a subprocess started with ``--python`` (default:
this interpreter): ``impl_server.py`` (a ``DeviceServer``), ``impl_client.py``
(``Client``/``SensorWatcher``) or ``bench_codec.py``.

Every scenario is bounded in time and in count and uses only 127.0.0.1. See README.rst for
what each one measures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import time
from typing import Any, Callable, Coroutine, Counter, Dict, List, Optional, Sequence, Set

from _benchutil import (
    BENCH_DIR,
    HOST,
    READ_CHUNK,
    STREAM_LIMIT,
    ImplServer,
    Metrics,
    RawConn,
    emit_json,
    percentile,
    raise_nofile_limit,
    sensor_names,
)

Result = Dict[str, Any]
ScenarioFunc = Callable[[str, bool], Coroutine[Any, Any, Result]]
SCENARIOS: Dict[str, ScenarioFunc] = {}

#: Upper bound on any single wait in a scenario (the harness also has a per-run timeout).
TIMEOUT = 120.0


def scenario(name: str) -> Callable[[ScenarioFunc], ScenarioFunc]:
    def register(func: ScenarioFunc) -> ScenarioFunc:
        SCENARIOS[name] = func
        return func

    return register


def elapsed_since(start: float) -> float:
    return time.perf_counter() - start


async def run_impl_script(python: str, script: str, *args: str) -> Result:
    """Run a measured-implementation script and return its (last) JSON output line."""
    proc = await asyncio.create_subprocess_exec(
        python,
        os.path.join(BENCH_DIR, script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        limit=STREAM_LIMIT,
    )
    try:
        stdout, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT * 2)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    lines = stdout.decode().strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{script} {' '.join(args)} failed with exit code {proc.returncode}")
    result: Result = json.loads(lines[-1])
    return result


# --------------------------------------------------------------------------------------
# Raw asyncio KATCP server, used as the peer for the client-side scenarios


class RawServer:
    """Minimal KATCP device written with raw asyncio streams (no aiokatcp).

    Advertises ``5.1-MIB`` and answers, with the request's message id:

    * ``?echo args...`` → ``!echo ok args...``
    * ``?sensor-list [name]`` → one ``#sensor-list`` per integer sensor, ``!sensor-list ok N``
    * ``?sensor-sampling n1[,n2...] strategy`` → one ``#sensor-status`` per name (unless
      ``none``), then the reply echoing the arguments
    * ``?bench-push R`` → ``ok``, then R rounds of one ``#sensor-status`` per sensor with
      values 1..R (the writer waits for the socket to drain every 500 lines)
    * anything else → ``ok``
    """

    VERSION_CONNECT = (
        b"#version-connect katcp-protocol 5.1-MIB\n"
        b"#version-connect katcp-library rawbench-1.0 rawbench-1.0.0\n"
        b"#version-connect katcp-device rawbench-1.0 rawbench-1.0.0\n"
    )

    def __init__(self, n_sensors: int = 0) -> None:
        self.names = [name.encode() for name in sensor_names(n_sensors)]
        self.values = dict.fromkeys(self.names, 0)
        self.requests: Counter[str] = collections.Counter()
        self.port = 0
        self._server: Optional[asyncio.AbstractServer] = None
        self._tasks: Set[asyncio.Future[None]] = set()
        self._writers: Set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._handle, HOST, 0, limit=STREAM_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _status_line(self, name: bytes, timestamp: bytes) -> bytes:
        return b"#sensor-status %s 1 %s nominal %d\n" % (timestamp, name, self.values[name])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        writer.write(self.VERSION_CONNECT)
        partial = b""
        try:
            while True:
                data = await reader.read(READ_CHUNK)
                if not data:
                    break
                lines = (partial + data).split(b"\n")
                partial = lines.pop()
                out: List[bytes] = []
                for line in lines:
                    if line.startswith(b"?"):
                        self._dispatch(line.rstrip(b"\r"), out, writer)
                if out:
                    writer.write(b"".join(out))
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _dispatch(self, line: bytes, out: List[bytes], writer: asyncio.StreamWriter) -> None:
        head, _, rest = line[1:].partition(b" ")  # head is name[mid]
        name = head.split(b"[", 1)[0]
        args = rest.split()
        self.requests[name.decode()] += 1
        reply = b"!" + head
        if name == b"echo":
            out.append(b"%s ok %s\n" % (reply, rest) if rest else reply + b" ok\n")
        elif name == b"sensor-list":
            names = [n for n in self.names if not args or n == args[0]]
            inform = b"#" + head
            out.extend(b"%s %s Benchmark\\_counter \\@ integer\n" % (inform, n) for n in names)
            out.append(b"%s ok %d\n" % (reply, len(names)))
        elif name == b"sensor-sampling" and args:
            names = args[0].split(b",")
            if len(args) > 1 and args[1] != b"none":
                timestamp = repr(time.time()).encode()
                out.extend(self._status_line(n, timestamp) for n in names if n in self.values)
            strategy = args[1:] or [b"none"]
            out.append(b"%s ok %s %s\n" % (reply, args[0], b" ".join(strategy)))
        elif name == b"bench-push" and args:
            out.append(reply + b" ok\n")
            task = asyncio.ensure_future(self._push(writer, int(args[0])))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            out.append(reply + b" ok\n")

    async def _push(self, writer: asyncio.StreamWriter, rounds: int) -> None:
        chunk: List[bytes] = []
        for _ in range(rounds):
            timestamp = repr(time.time()).encode()
            for name in self.names:
                self.values[name] += 1
                chunk.append(self._status_line(name, timestamp))
                if len(chunk) == 500:
                    writer.write(b"".join(chunk))
                    chunk.clear()
                    await writer.drain()
        writer.write(b"".join(chunk))
        await writer.drain()


# --------------------------------------------------------------------------------------
# Scenarios


@scenario("codec")
async def codec(python: str, quick: bool) -> Result:
    return await run_impl_script(python, "bench_codec.py", "--json", *(["--quick"] * quick))


async def sync_conn(conn: RawConn, mid: int = 1) -> None:
    """Wait until the server has answered a ``?watchdog`` (i.e. the connection is set up)."""
    await asyncio.wait_for(conn.request(b"?watchdog[%d]\n" % mid, b"!watchdog[%d]" % mid), TIMEOUT)


@scenario("serial")
async def serial(python: str, quick: bool) -> Result:
    n = 3000 if quick else 10000
    requests = [
        # (name, request template, expected reply suffix)
        (
            "echo",
            b"?echo[%d] hello world 3.25 \\_spaced\\_arg\n",
            b" ok hello world 3.25 \\_spaced\\_arg",
        ),
        ("add", b"?add[%d] 12345 67890\n", b" ok 80235"),
    ]
    m = Metrics()
    async with ImplServer(python) as srv:
        conn = await RawConn.open(srv.port)
        await sync_conn(conn)
        mid = 1
        bad = 0
        for name, template, expect in requests:
            prefix = b"!" + name.encode() + b"[%d]"
            for _ in range(n // 10):  # warm-up
                mid += 1
                await conn.request(template % mid, prefix % mid)
            before = await srv.stats()
            latencies = []
            start = time.perf_counter()
            for _ in range(n):
                mid += 1
                t = time.perf_counter()
                reply = await conn.request(template % mid, prefix % mid)
                latencies.append(time.perf_counter() - t)
                bad += not reply.endswith(expect)
            elapsed = elapsed_since(start)
            after = await srv.stats()
            m.add(f"{name}_rps", n / elapsed, "req/s")
            m.add(f"{name}_p50_us", percentile(latencies, 50) * 1e6, "us")
            m.add(f"{name}_p99_us", percentile(latencies, 99) * 1e6, "us")
            m.add(f"{name}_server_cpu_us", (after["cpu"] - before["cpu"]) / n * 1e6, "us/req")
        m.add("bad_replies", bad, "count")
        await conn.close()
    return {"version": srv.info["version"], **m.as_dict(), "params": {"requests": n}}


@scenario("pipelined")
async def pipelined(python: str, quick: bool) -> Result:
    n_conns, depth = 16, 64
    window = 2.0 if quick else 5.0
    grace = 10.0
    template = b"?echo[%d] payload 12345\n"
    async with ImplServer(python) as srv:
        conns = [await RawConn.open(srv.port) for _ in range(n_conns)]
        for conn in conns:
            await sync_conn(conn)
        latencies: List[float] = []
        in_window = [0] * n_conns
        unanswered = [0] * n_conns
        before = await srv.stats()
        start = time.perf_counter()
        window_end = start + window
        deadline = window_end + grace

        async def worker(i: int, conn: RawConn) -> None:
            sent: Dict[int, float] = {}
            next_mid = 1

            def send(count: int) -> None:
                nonlocal next_mid
                t = time.perf_counter()
                batch = []
                for mid in range(next_mid + 1, next_mid + count + 1):
                    sent[mid] = t
                    batch.append(template % mid)
                next_mid += count
                conn.send(b"".join(batch))

            send(depth)
            while sent:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    lines = await asyncio.wait_for(conn.read_lines(), remaining)
                except asyncio.TimeoutError:
                    break
                if not lines:
                    break
                t = time.perf_counter()
                got = 0
                for line in lines:
                    if line.startswith(b"!echo["):
                        sent_time = sent.pop(int(line[6 : line.index(b"]")]), None)
                        if sent_time is not None:
                            latencies.append(t - sent_time)
                            got += 1
                if t < window_end:
                    in_window[i] += got
                    send(got)
            unanswered[i] = len(sent)

        await asyncio.gather(*(worker(i, conn) for i, conn in enumerate(conns)))
        after = await srv.stats()
        for conn in conns:
            await conn.close()
    total = sum(in_window)
    m = Metrics()
    m.add("rps", total / window, "req/s")
    m.add("p50_ms", percentile(latencies, 50) * 1e3, "ms")
    m.add("p99_ms", percentile(latencies, 99) * 1e3, "ms")
    m.add("max_ms", max(latencies, default=float("nan")) * 1e3, "ms")
    m.add("server_cpu_us", (after["cpu"] - before["cpu"]) / max(len(latencies), 1) * 1e6, "us/req")
    m.add("conns_without_reply", sum(count == 0 for count in in_window), "count")
    m.add("unanswered", sum(unanswered), "count")
    params = {"connections": n_conns, "depth": depth, "window_s": window}
    return {"version": srv.info["version"], **m.as_dict(), "params": params}


@scenario("mixed")
async def mixed(python: str, quick: bool) -> Result:
    """Slow and fast mixed on one connection: 64 in flight, one of them a 100 ms request.

    Whenever the slow request is answered another is sent, and every quick reply is
    replaced by a new quick request, so the connection always holds one slow request
    among 63 quick ones. Quick requests must not wait for the slow one.
    """
    depth, slow_delay = 64, 0.1
    window = 2.0 if quick else 5.0
    grace = 10.0
    quick_template = b"?echo[%d] payload 12345\n"
    slow_template = b"?sleep[%d] %.3f\n"
    async with ImplServer(python) as srv:
        conn = await RawConn.open(srv.port)
        await sync_conn(conn)
        quick_latencies: List[float] = []
        slow_latencies: List[float] = []
        sent: Dict[int, float] = {}
        slow_mids: Set[int] = set()
        next_mid = 1
        in_window = 0

        def send(quick_count: int, slow: bool) -> None:
            nonlocal next_mid
            t = time.perf_counter()
            batch = []
            if slow:
                next_mid += 1
                sent[next_mid] = t
                slow_mids.add(next_mid)
                batch.append(slow_template % (next_mid, slow_delay))
            for _ in range(quick_count):
                next_mid += 1
                sent[next_mid] = t
                batch.append(quick_template % next_mid)
            conn.send(b"".join(batch))

        before = await srv.stats()
        start = time.perf_counter()
        window_end = start + window
        deadline = window_end + grace
        send(depth - 1, True)
        while sent:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                lines = await asyncio.wait_for(conn.read_lines(), remaining)
            except asyncio.TimeoutError:
                break
            if not lines:
                break
            t = time.perf_counter()
            got_quick = 0
            got_slow = False
            for line in lines:
                if line.startswith((b"!echo[", b"!sleep[")):
                    mid = int(line[line.index(b"[") + 1 : line.index(b"]")])
                    sent_time = sent.pop(mid, None)
                    if sent_time is None:
                        continue
                    if mid in slow_mids:
                        slow_mids.discard(mid)
                        slow_latencies.append(t - sent_time)
                        got_slow = True
                    else:
                        quick_latencies.append(t - sent_time)
                        got_quick += 1
            if t < window_end:
                in_window += got_quick + got_slow
                send(got_quick, got_slow)
        elapsed = min(time.perf_counter(), window_end) - start
        after = await srv.stats()
        unanswered = len(sent)
        await conn.close()
    m = Metrics()
    m.add("rps", in_window / elapsed, "req/s")
    m.add("quick_p50_ms", percentile(quick_latencies, 50) * 1e3, "ms")
    m.add("quick_p99_ms", percentile(quick_latencies, 99) * 1e3, "ms")
    m.add("quick_max_ms", max(quick_latencies, default=float("nan")) * 1e3, "ms")
    m.add("slow_p50_ms", percentile(slow_latencies, 50) * 1e3, "ms")
    m.add("slow_count", len(slow_latencies), "count")
    total = len(quick_latencies) + len(slow_latencies)
    m.add("server_cpu_us", (after["cpu"] - before["cpu"]) / max(total, 1) * 1e6, "us/req")
    m.add("unanswered", unanswered, "count")
    params = {"depth": depth, "slow_delay_s": slow_delay, "window_s": window}
    return {"version": srv.info["version"], **m.as_dict(), "params": params}


@scenario("client")
async def client(python: str, quick: bool) -> Result:
    serial_n, batches = (3000, 20) if quick else (10000, 60)
    async with RawServer() as raw:
        args = ["client", "--port", str(raw.port), "--serial", str(serial_n)]
        args += ["--concurrency", "256", "--batches", str(batches)]
        return await run_impl_script(python, "impl_client.py", *args)


class SequenceTracker:
    """Check the ``#sensor-status`` stream of one connection (called from data_received).

    Each sensor's values must arrive as 1, 2, ..., `final` (the subscription's initial
    value is 0): a jump counts the skipped values as lost, a repeated or smaller value as
    reordered.
    """

    def __init__(self, names: Sequence[bytes], final: int) -> None:
        self.last = dict.fromkeys(names, 0)
        self.final = final
        self.lines = self.lost = self.reordered = 0
        self.unfinished = len(names)
        self.done_at = time.perf_counter()
        self.done = asyncio.get_running_loop().create_future()

    def feed(self, lines: List[bytes]) -> None:
        last = self.last
        for line in lines:
            if not line.startswith(b"#sensor-status "):
                continue
            self.lines += 1
            parts = line.split(b" ")
            name = parts[3]
            value = int(parts[5])
            prev = last[name]
            if value <= prev:
                self.reordered += 1
                continue
            self.lost += value - prev - 1
            last[name] = value
            if value == self.final:
                self.unfinished -= 1
        self.done_at = time.perf_counter()
        if not self.unfinished and not self.done.done():
            self.done.set_result(None)

    async def wait(self, conn: RawConn) -> None:
        """Wait until every sensor reached the final value or the connection closed."""
        await asyncio.wait([self.done, conn.closed], return_when=asyncio.FIRST_COMPLETED)


@scenario("fanout")
async def fanout(python: str, quick: bool) -> Result:
    n_sensors, n_clients, yield_every = 1000, 8, 100
    rounds = 10 if quick else 30
    names = [name.encode() for name in sensor_names(n_sensors)]
    subscribe = b"?sensor-sampling[1] %s auto\n" % b",".join(names)
    async with ImplServer(python, "--sensors", str(n_sensors)) as srv:
        conns = []
        initial_ok = 0
        for _ in range(n_clients):
            conn = await RawConn.open(srv.port)
            conn.send(subscribe)
            reply, skipped = await asyncio.wait_for(
                conn.read_until(b"!sensor-sampling[1]"), TIMEOUT
            )
            initial = sum(line.startswith(b"#sensor-status ") for line in skipped)
            initial_ok += reply.startswith(b"!sensor-sampling[1] ok") and initial == n_sensors
            await conn.request(b"?bench-register[2]\n", b"!bench-register[2]")
            conns.append(conn)

        before = await srv.stats()
        cpu0 = time.process_time()
        start = time.perf_counter()
        trackers = [SequenceTracker(names, rounds) for _ in conns]
        for conn, tracker in zip(conns, trackers):
            conn.set_line_handler(tracker.feed)
        update = await srv.command(cmd="update", rounds=rounds, yield_every=yield_every)
        waits = [asyncio.ensure_future(t.wait(conn)) for t, conn in zip(trackers, conns)]
        await asyncio.wait(waits, timeout=TIMEOUT)
        loadgen_cpu = time.process_time() - cpu0
        after = await srv.stats()
        for conn in conns:
            await conn.close()
        await asyncio.gather(*waits)
    total_lines = sum(t.lines for t in trackers)
    wall = max(t.done_at for t in trackers) - start
    server_cpu = after["cpu"] - before["cpu"]
    m = Metrics()
    m.add("lines_per_s", total_lines / wall, "lines/s")
    m.add("server_updates_per_s", update["updates"] / update["elapsed"], "upd/s")
    m.add("server_cpu_us_per_line", server_cpu / max(total_lines, 1) * 1e6, "us")
    m.add("lost", sum(t.lost for t in trackers), "count")
    m.add("reordered", sum(t.reordered for t in trackers), "count")
    m.add("incomplete_sensors", sum(t.unfinished for t in trackers), "count")
    m.add("bad_subscriptions", n_clients - initial_ok, "count")
    # Diagnostics: the load generator is the bottleneck only if it is near 100% while the
    # server is well below.
    m.add("server_cpu_pct", 100 * server_cpu / wall, "%")
    m.add("loadgen_cpu_pct", 100 * loadgen_cpu / wall, "%")
    params = {
        "sensors": n_sensors,
        "clients": n_clients,
        "rounds": rounds,
        "yield_every": yield_every,
        "expected_lines": n_clients * n_sensors * rounds,
    }
    return {"version": srv.info["version"], **m.as_dict(), "params": params}


@scenario("watcher")
async def watcher(python: str, quick: bool) -> Result:
    n_sensors = 1000
    rounds = 5 if quick else 20
    async with RawServer(n_sensors) as raw:
        args = ["watcher", "--port", str(raw.port), "--sensors", str(n_sensors)]
        result = await run_impl_script(python, "impl_client.py", *args, "--rounds", str(rounds))
    result["params"]["requests_seen"] = dict(raw.requests)
    return result


@scenario("watcher-add")
async def watcher_add(python: str, quick: bool) -> Result:
    """Add a second watcher to a client already mirroring 10k sensors."""
    n_sensors = 10_000
    async with RawServer(n_sensors) as raw:
        args = ["watcher-add", "--port", str(raw.port), "--sensors", str(n_sensors)]
        result = await run_impl_script(python, "impl_client.py", *args)
    result["params"]["requests_seen"] = dict(raw.requests)
    return result


@scenario("connections")
async def connections(python: str, quick: bool) -> Result:
    n = 500
    raise_nofile_limit()
    async with ImplServer(python) as srv:
        before = await srv.stats()
        connect_times: List[float] = []
        answer_times: List[float] = []

        async def connect() -> RawConn:
            t = time.perf_counter()
            conn = await RawConn.open(srv.port)
            connected = time.perf_counter()
            await sync_conn(conn)
            connect_times.append(connected - t)
            answer_times.append(elapsed_since(connected))
            return conn

        start = time.perf_counter()
        results: Sequence[Any] = await asyncio.gather(
            *(connect() for _ in range(n)), return_exceptions=True
        )
        all_answered = elapsed_since(start)
        conns = [r for r in results if isinstance(r, RawConn)]
        # Second round trip on every connection: everything the server queued while the
        # others connected (e.g. #client-connected) has been delivered and read.
        await asyncio.gather(*(sync_conn(conn, 2) for conn in conns), return_exceptions=True)
        after = await srv.stats()
        for conn in conns:
            await conn.close()
    m = Metrics()
    m.add("all_answered_s", all_answered, "s")
    m.add("connect_max_ms", max(connect_times, default=float("nan")) * 1e3, "ms")
    # A TCP connect taking over 0.5 s on loopback means the SYN was dropped and retried
    # (the listen backlog overflowed).
    m.add("slow_connects", sum(t > 0.5 for t in connect_times), "n")
    m.add("answer_p50_ms", percentile(answer_times, 50) * 1e3, "ms")
    m.add("answer_max_ms", max(answer_times, default=float("nan")) * 1e3, "ms")
    m.add("rss_per_conn_kib", (after["rss_kib"] - before["rss_kib"]) / n, "KiB")
    m.add("server_cpu_ms", (after["cpu"] - before["cpu"]) * 1e3, "ms")
    m.add("failed", n - len(conns), "count")
    params = {"connections": n, "rss_before_kib": before["rss_kib"]}
    return {"version": srv.info["version"], **m.as_dict(), "params": params}


@scenario("bulk-subscribe")
async def bulk_subscribe(python: str, quick: bool) -> Result:
    n_sensors = 20000
    ping_interval = 0.002
    names = [name.encode() for name in sensor_names(n_sensors)]
    async with ImplServer(python, "--sensors", str(n_sensors)) as srv:
        subscriber = await RawConn.open(srv.port)
        pinger = await RawConn.open(srv.port)
        await sync_conn(subscriber)
        await sync_conn(pinger)
        done = asyncio.Event()
        pings: List[float] = []

        async def ping() -> None:
            mid = 1
            while not done.is_set():
                mid += 1
                t = time.perf_counter()
                await pinger.request(b"?watchdog[%d]\n" % mid, b"!watchdog[%d]" % mid)
                pings.append(elapsed_since(t))
                await asyncio.sleep(ping_interval)

        before = await srv.stats()
        ping_task = asyncio.ensure_future(ping())
        start = time.perf_counter()
        subscriber.send(b"?sensor-sampling[1] %s auto\n" % b",".join(names))
        status_lines = 0
        reply = b""
        while not reply:
            lines = await asyncio.wait_for(subscriber.read_lines(), TIMEOUT)
            if not lines:
                break
            for line in lines:
                if line.startswith(b"#sensor-status "):
                    status_lines += 1
                elif line.startswith(b"!sensor-sampling[1]"):
                    reply = line
                    break
        subscribe_time = elapsed_since(start)
        done.set()
        await asyncio.wait_for(ping_task, TIMEOUT)
        after = await srv.stats()
        await subscriber.close()
        await pinger.close()
    m = Metrics()
    m.add("subscribe_s", subscribe_time, "s")
    m.add("server_cpu_s", after["cpu"] - before["cpu"], "s")
    m.add("ping_max_ms", max(pings, default=float("nan")) * 1e3, "ms")
    m.add("ping_p50_ms", percentile(pings, 50) * 1e3, "ms")
    m.add("missing_status_lines", n_sensors - status_lines, "count")
    m.add("failed", int(not reply.startswith(b"!sensor-sampling[1] ok")), "count")
    params = {"sensors": n_sensors, "ping_interval_s": ping_interval, "pings": len(pings)}
    return {"version": srv.info["version"], **m.as_dict(), "params": params}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=list(SCENARIOS))
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter whose aiokatcp is measured [default: this one]",
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts and windows")
    args = parser.parse_args()
    start = time.perf_counter()
    output: Result = {"scenario": args.scenario, "python": args.python, "quick": args.quick}
    try:
        output.update(asyncio.run(SCENARIOS[args.scenario](args.python, args.quick)))
    except Exception as exc:
        output["error"] = f"{type(exc).__name__}: {exc}"
    output["wall_s"] = round(elapsed_since(start), 3)
    emit_json(output)
    sys.exit(1 if "error" in output else 0)


if __name__ == "__main__":
    main()
