"""Lower bounds for the ``client`` scenario's serial round trip (diagnostic, not a benchmark).

Usage::

    python benchmarks/serial_floor.py [--python PATH ...] [--repeat N] [--requests N]

Starts the ``client`` scenario's raw peer server (``scenarios.RawServer``) in a subprocess
and measures serial ``?echo`` round trips against it with, alternately:

``asyncio-floor``
    A minimal ``asyncio.Protocol`` client: write the request line, wait on a future that
    ``data_received`` resolves when the reply line arrives. No parsing, no message
    objects: the least any asyncio client can do per request.
``blocking-socket``
    A blocking socket with ``send``/``recv`` and no event loop at all.
each ``--python``
    ``Client.request("echo", b"hello", 42, 2.5)`` of that interpreter's aiokatcp (the
    same call as the ``client`` scenario).

Prints the median requests/s of each over the repeats. If an implementation is close
to ``asyncio-floor``, its serial rate is set by the event loop, the kernel and the peer,
not by the library's own code.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Dict, List

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))

_PEER = """
import asyncio, sys
sys.path.insert(0, {bench_dir!r})
from scenarios import RawServer
async def main():
    async with RawServer() as raw:
        print(raw.port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
asyncio.run(main())
"""

_ASYNCIO_FLOOR = """
import asyncio, json, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
class P(asyncio.Protocol):
    fut = None
    buf = b""
    def data_received(self, data):
        self.buf += data
        if self.buf.endswith(b"\\n") and b"!echo" in self.buf:
            self.buf = b""
            if self.fut is not None and not self.fut.done():
                self.fut.set_result(None)
async def main():
    loop = asyncio.get_running_loop()
    transport, p = await loop.create_connection(P, "127.0.0.1", port)
    await asyncio.sleep(0.1)
    p.buf = b""
    async def run(count):
        for i in range(1, count + 1):
            p.fut = loop.create_future()
            transport.write(b"?echo[%d] hello 42 2.5\\n" % i)
            await p.fut
    await run(n // 10)
    t0 = time.perf_counter()
    await run(n)
    print(json.dumps({"rps": n / (time.perf_counter() - t0)}))
    transport.close()
asyncio.run(main())
"""

_BLOCKING = """
import json, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
time.sleep(0.1)
s.recv(65536)
def run(count):
    for i in range(1, count + 1):
        s.send(b"?echo[%d] hello 42 2.5\\n" % i)
        buf = b""
        while not buf.endswith(b"\\n"):
            buf += s.recv(65536)
run(n // 10)
t0 = time.perf_counter()
run(n)
print(json.dumps({"rps": n / (time.perf_counter() - t0)}))
"""


def measure(cmd: List[str]) -> float:
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=BENCH_DIR).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if "rps" in result:
        return float(result["rps"])
    return float(result["metrics"]["serial_rps"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", default=[], metavar="PATH")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10000)
    args = parser.parse_args()
    pythons = [sys.executable, *args.python]
    peer = subprocess.Popen(
        [sys.executable, "-c", _PEER.format(bench_dir=BENCH_DIR)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert peer.stdout is not None
        port = peer.stdout.readline().strip()
        n = str(args.requests)
        variants = {
            "asyncio-floor": [sys.executable, "-c", _ASYNCIO_FLOOR, port, n],
            "blocking-socket": [sys.executable, "-c", _BLOCKING, port, n],
        }
        for python in pythons:
            variants[f"aiokatcp ({python})"] = [
                python,
                os.path.join(BENCH_DIR, "impl_client.py"),
                "client",
                "--port",
                port,
                "--serial",
                n,
                "--batches",
                "1",
            ]
        samples: Dict[str, List[float]] = {name: [] for name in variants}
        for rep in range(args.repeat):
            order = list(variants) if rep % 2 == 0 else list(variants)[::-1]
            for name in order:
                samples[name].append(measure(variants[name]))
        for name, values in samples.items():
            values_text = ", ".join(f"{v:,.0f}" for v in values)
            print(f"{name:60s} {statistics.median(values):8,.0f} req/s  ({values_text})")
    finally:
        if peer.stdin is not None:
            peer.stdin.close()
        peer.wait(timeout=10)


if __name__ == "__main__":
    main()
