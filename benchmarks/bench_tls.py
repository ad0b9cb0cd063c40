"""The cost of TLS (and of an authorisation hook): serial and pipelined requests/s.

Usage::

    python benchmarks/bench_tls.py [--quick] [--repeat N] [--duration SECONDS]

A ``DeviceServer`` runs in a child process; this process drives it with an
``aiokatcp.Client`` over 127.0.0.1 in each mode:

``plain``
    plain TCP, no ``authorize`` override (the 2.x set-up);
``plain+authorize``
    plain TCP, an ``authorize`` override that allows everything (the price of
    the hook itself);
``tls``
    TLS 1.3 with a server certificate (client verifies it), no client certificate;
``tls+client-cert``
    TLS with a required client certificate and the same ``authorize`` override.

and for each mode measures

``serial``
    one ``?echo`` at a time (``await client.request``), requests/s;
``pipelined``
    batches of 256 concurrent requests (``asyncio.gather``), requests/s.

Modes alternate within each repeat so that drift on the machine affects all
of them alike; figures are medians over the repeats. Certificates are made
for the run with ``trustme`` (from the ``test`` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import ssl
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, List, Tuple

import trustme

import aiokatcp

BATCH = 256
MODES = ["plain", "plain+authorize", "tls", "tls+client-cert"]


class BenchDevice(aiokatcp.DeviceServer):
    VERSION = "bench-tls-1.0"
    BUILD_STATE = "bench-tls-1.0.0"

    async def request_echo(self, ctx: aiokatcp.RequestContext, value: int) -> int:
        """Return the value."""
        return value


class AuthorizingDevice(BenchDevice):
    async def authorize(self, ctx: aiokatcp.RequestContext, name: str) -> bool:
        return True


def _serve(mode: str, pem: Dict[str, str], port_out: Any, stop: Any) -> None:
    async def main() -> None:
        ctx = None
        if mode.startswith("tls"):
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(pem["server"])
            if mode == "tls+client-cert":
                ctx.load_verify_locations(pem["ca"])
                ctx.verify_mode = ssl.CERT_REQUIRED
        cls = BenchDevice if mode in ("plain", "tls") else AuthorizingDevice
        server = cls("127.0.0.1", 0, ssl=ctx)
        await server.start()
        port_out.send(server.port)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, stop.wait)
        await server.stop()

    asyncio.run(main())


async def _measure(
    mode: str, port: int, pem: Dict[str, str], duration: float
) -> Tuple[float, float]:
    kwargs: Dict[str, Any] = {}
    if mode.startswith("tls"):
        ctx = ssl.create_default_context(cafile=pem["ca"])
        if mode == "tls+client-cert":
            ctx.load_cert_chain(pem["client"])
        kwargs = {"ssl": ctx, "server_hostname": "localhost"}
    async with await aiokatcp.Client.connect("127.0.0.1", port, **kwargs) as client:
        for i in range(200):  # warm up
            await client.request("echo", i)
        count = 0
        start = time.perf_counter()
        end = start + duration
        while time.perf_counter() < end:
            await client.request("echo", count)
            count += 1
        serial = count / (time.perf_counter() - start)
        count = 0
        start = time.perf_counter()
        end = start + duration
        while time.perf_counter() < end:
            await asyncio.gather(*(client.request("echo", i) for i in range(BATCH)))
            count += BATCH
        pipelined = count / (time.perf_counter() - start)
    return serial, pipelined


def _run_mode(mode: str, pem: Dict[str, str], duration: float) -> Tuple[float, float]:
    mp = multiprocessing.get_context("spawn")
    port_in, port_out = mp.Pipe(duplex=False)
    stop = mp.Event()
    child = mp.Process(target=_serve, args=(mode, pem, port_out, stop))
    child.start()
    try:
        if not port_in.poll(60):
            raise RuntimeError("benchmark server did not start")
        port = port_in.recv()
        return asyncio.run(_measure(mode, port, pem, duration))
    finally:
        stop.set()
        child.join(30)
        if child.is_alive():
            child.kill()


def _make_pem(directory: str) -> Dict[str, str]:
    ca = trustme.CA()
    paths = {name: os.path.join(directory, f"{name}.pem") for name in ("ca", "server", "client")}
    ca.cert_pem.write_to_path(paths["ca"])
    ca.issue_cert("localhost", "127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
        paths["server"]
    )
    ca.issue_cert(
        "client.invalid", common_name="bench"
    ).private_key_and_cert_chain_pem.write_to_path(paths["client"])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 s windows, 3 repeats")
    parser.add_argument("--repeat", type=int, help="repeats per mode (default 5, quick 3)")
    parser.add_argument("--duration", type=float, help="seconds per measurement (default 3)")
    parser.add_argument("--mode", action="append", choices=MODES, help="only these modes")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 5)
    duration = args.duration or (1.0 if args.quick else 3.0)
    modes = args.mode or MODES
    results: Dict[str, List[Tuple[float, float]]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as directory:
        pem = _make_pem(directory)
        for i in range(repeat):
            order = modes if i % 2 == 0 else list(reversed(modes))
            for mode in order:
                results[mode].append(_run_mode(mode, pem, duration))
                print(
                    f"  run {i + 1}/{repeat} {mode}: {results[mode][-1][0]:,.0f} serial, "
                    f"{results[mode][-1][1]:,.0f} pipelined req/s",
                    file=sys.stderr,
                )
    base_serial = statistics.median(r[0] for r in results[modes[0]])
    base_pipe = statistics.median(r[1] for r in results[modes[0]])
    print(
        f"{'mode':<18}{'serial req/s':>14}{'vs ' + modes[0]:>12}{'pipelined req/s':>18}"
        f"{'vs ' + modes[0]:>12}"
    )
    for mode in modes:
        serial = statistics.median(r[0] for r in results[mode])
        pipe = statistics.median(r[1] for r in results[mode])
        print(
            f"{mode:<18}{serial:>14,.0f}{serial / base_serial:>12.2f}{pipe:>18,.0f}"
            f"{pipe / base_pipe:>12.2f}"
        )


if __name__ == "__main__":
    main()
