"""Hostile peers against a real server process: server RSS and CPU figures.

Usage: ``python benchmarks/hostile.py [--quick] [--json] [SCENARIO ...]``

Scenarios (all on 127.0.0.1; the server is this script re-run with ``--serve`` in a
subprocess, using whatever ``aiokatcp`` the interpreter imports, so the same script measures
aiokatcp 2.3.0 with ``/work/ref/venv-aiokatcp23/bin/python benchmarks/hostile.py``):

``lagging``
    A subscriber asks for ``auto`` sampling of 10 sensors that the server updates as fast as
    it can, then never reads, for 30 s (``--quick``: 10 s). Target: server RSS within 64 MiB
    of its baseline and the subscriber still connected (counted with ``?client-list``).
``garbage``
    A client sends 2-byte garbage lines as fast as the server takes them and never reads
    (each one earns a ``#log error``), for 20 s (``--quick``: 8 s). Target: RSS within
    64 MiB of baseline.
``trickle``
    One 15 MiB line sent in 1 KiB pieces (``--quick``: 4 MiB), then ``?watchdog``. Target:
    under 2 s of server CPU for the line.
``unfinished``
    Eight clients each send 15 MiB of one line that never ends (``--quick``: four clients
    of 8 MiB). Figure: server RSS growth and how many of the
    connections the server dropped (the server-wide input bound, 64 MiB by default).
``regex``
    One client sends ``?sensor-list /(.|.)*!/`` (20 sensors with 20-character names) and
    another, right after, ``?watchdog``. Target: the watchdog reply within 100 ms.

A scenario that makes the server grow past 1 GiB over its baseline is stopped there (to
spare the machine) and reported as such. Figures are wall-clock on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional

MIB = 1024**2
ABORT_GROWTH = 1024 * MIB
TICK = os.sysconf("SC_CLK_TCK")


# -- the server process ------------------------------------------------------------------------


def serve(update: bool) -> None:
    import asyncio

    import aiokatcp

    class Server(aiokatcp.DeviceServer):
        VERSION = "hostile-1.0"
        BUILD_STATE = "hostile-1.0.0"

    async def main() -> None:
        server = Server("127.0.0.1", 0)
        fast = [aiokatcp.Sensor(int, f"fast-{i}", "updated as fast as possible") for i in range(10)]
        names = [f"{i:04d}-abcdefghijklmno" for i in range(20)]  # 20 names of 20 characters
        for sensor in fast + [aiokatcp.Sensor(int, name, "a sensor") for name in names]:
            server.sensors.add(sensor)
        await server.start()
        port = server.server.sockets[0].getsockname()[1]  # 2.x API (2.3.0 and ours)
        print(port, flush=True)
        value = 0
        while True:
            if update:
                value += 1
                for sensor in fast:
                    sensor.value = value
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(3600)

    asyncio.run(main())


class ServerProcess:
    def __init__(self, update: bool = False) -> None:
        args = [sys.executable, __file__, "--serve"] + (["--update"] if update else [])
        # The server's log (a warning per malformed line) goes to a file, not the terminal.
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        time.sleep(0.5)  # let start-up allocations settle before the baseline
        self.baseline = self.rss()

    def rss(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def cpu(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def log_lines(self, word: bytes) -> int:
        """Lines of the server's log so far that contain `word` (case-insensitive)."""
        self.log.seek(0)
        return sum(word in line.lower() for line in self.log)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def read_until(sock: socket.socket, marker: bytes, timeout: float = 30.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def count_clients(server: ServerProcess) -> int:
    with server.connect() as sock:
        read_until(sock, b"katcp-device")
        sock.sendall(b"?client-list\n")
        data = read_until(sock, b"!client-list")
        data += read_until(sock, b"\n") if not data.endswith(b"\n") else b""
        count = data.split(b"!client-list ok ", 1)[1].split(b"\n", 1)[0]
        return int(count) - 1  # not counting this connection


def watch_rss(server: ServerProcess, duration: float, stop: Callable[[], bool]) -> Dict[str, Any]:
    peak = server.rss()
    end = time.monotonic() + duration
    aborted = False
    while time.monotonic() < end and not stop():
        time.sleep(0.25)
        peak = max(peak, server.rss())
        if peak - server.baseline > ABORT_GROWTH:
            aborted = True
            break
    return {"peak_growth_mib": round((peak - server.baseline) / MIB, 1), "aborted": aborted}


# -- scenarios ---------------------------------------------------------------------------------


def lagging(quick: bool) -> Dict[str, Any]:
    server = ServerProcess(update=True)
    try:
        sock = server.connect()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        read_until(sock, b"katcp-device")
        for i in range(10):
            sock.sendall(b"?sensor-sampling fast-%d auto\n" % i)
        read_until(sock, b"!sensor-sampling ok fast-9")
        result = watch_rss(server, 10 if quick else 30, lambda: False)
        try:
            clients = count_clients(server)
        except OSError as exc:
            clients = -1
            result["control_error"] = str(exc)
        # A dropped subscriber may stay listed while its goodbye drains (slowly: it does
        # not read), so the server's own log line is the measure.
        result["clients_listed"] = clients
        result["server_logged_disconnect"] = server.log_lines(b"disconnect") > 0
        result["target"] = "growth < 64 MiB and not disconnected"
        result["met"] = result["peak_growth_mib"] < 64 and not result["server_logged_disconnect"]
        sock.close()
        return result
    finally:
        server.close()


def garbage(quick: bool) -> Dict[str, Any]:
    server = ServerProcess()
    try:
        sock = server.connect()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(0.2)
        junk = b"x\n" * 32768
        state = {"sent": 0, "closed": False, "done": False}

        def send() -> None:
            while not state["done"]:
                try:
                    state["sent"] += sock.send(junk)
                except socket.timeout:
                    continue
                except OSError:
                    state["closed"] = True
                    return

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        result = watch_rss(server, 8 if quick else 20, lambda: bool(state["closed"]))
        state["done"] = True
        thread.join()
        sock.close()
        result["sent_mib"] = round(state["sent"] / MIB, 1)
        result["disconnected"] = state["closed"]
        result["target"] = "growth < 64 MiB"
        result["met"] = result["peak_growth_mib"] < 64 and not result["aborted"]
        return result
    finally:
        server.close()


def trickle(quick: bool) -> Dict[str, Any]:
    server = ServerProcess()
    try:
        sock = server.connect()
        read_until(sock, b"katcp-device")
        size = (4 if quick else 15) * MIB
        piece = b"a" * 1024
        cpu0 = server.cpu()
        start = time.monotonic()
        sock.sendall(b"?watchdog ")
        for _ in range(size // 1024):
            sock.sendall(piece)
            time.sleep(0.0001)  # so that the server mostly sees one piece per read
        sock.sendall(b"\n?watchdog\n")
        read_until(sock, b"!watchdog ok", timeout=600)
        cpu = server.cpu() - cpu0
        sock.close()
        return {
            "line_mib": size // MIB,
            "server_cpu_s": round(cpu, 2),
            "wall_s": round(time.monotonic() - start, 2),
            "target": "server CPU < 2 s (15 MiB)",
            "met": cpu < 2 * size / (15 * MIB),
        }
    finally:
        server.close()


def unfinished(quick: bool) -> Dict[str, Any]:
    server = ServerProcess()
    count, size = (4, 8 * MIB) if quick else (8, 15 * MIB)
    socks: List[socket.socket] = []
    dropped = set()
    peak = server.rss()
    try:
        for i in range(count):
            sock = server.connect()
            socks.append(sock)
            read_until(sock, b"katcp-device")
            sock.settimeout(30)
            try:
                sock.sendall(b"?watchdog " + b"u" * size)
            except OSError:
                dropped.add(i)
            peak = max(peak, server.rss())
        for _ in range(8):  # let the server catch up with what was sent
            time.sleep(0.25)
            peak = max(peak, server.rss())
        for i, sock in enumerate(socks):
            sock.settimeout(0.5)
            try:
                data = sock.recv(1 << 20)
                while data and b"#disconnect" not in data:
                    data += sock.recv(1 << 20)
                if b"#disconnect" in data or not data:
                    dropped.add(i)
            except OSError:
                pass
        growth = round((peak - server.baseline) / MIB, 1)
        return {
            "clients": count,
            "line_mib": size // MIB,
            "peak_growth_mib": growth,
            "dropped_by_server": len(dropped),
            "target": "growth near the 64 MiB bound, not clients x line",
            "met": growth < 64 + 2 * size / MIB,
        }
    finally:
        for sock in socks:
            sock.close()
        server.close()


def regex(quick: bool) -> Dict[str, Any]:
    server = ServerProcess()
    try:
        hostile = server.connect()
        victim = server.connect()
        read_until(hostile, b"katcp-device")
        read_until(victim, b"katcp-device")
        hostile.sendall(b"?sensor-list /(.|.)*!/\n")
        time.sleep(0.01)  # the server has started on it
        start = time.monotonic()
        victim.sendall(b"?watchdog\n")
        read_until(victim, b"!watchdog ok", timeout=600)
        delay = time.monotonic() - start
        reply = read_until(hostile, b"!sensor-list", timeout=600)
        hostile.close()
        victim.close()
        return {
            "watchdog_delay_ms": round(delay * 1000, 1),
            "hostile_reply": reply.split(b"!sensor-list", 1)[1].split(b"\n", 1)[0].decode(),
            "target": "watchdog within 100 ms",
            "met": delay < 0.1,
        }
    finally:
        server.close()


SCENARIOS: Dict[str, Callable[[bool], Dict[str, Any]]] = {
    "lagging": lagging,
    "garbage": garbage,
    "trickle": trickle,
    "unfinished": unfinished,
    "regex": regex,
}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], default=[])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--update", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.update)
        return 0
    import aiokatcp

    version = getattr(aiokatcp, "__version__", "?")
    results = {}
    for name in args.scenarios or list(SCENARIOS):
        results[name] = SCENARIOS[name](args.quick)
        if not args.json:
            print(f"{name:8} {json.dumps(results[name])}", flush=True)
    if args.json:
        print(json.dumps({"aiokatcp": version, "quick": args.quick, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
