"""Helpers shared by the benchmark scripts.

Standard library only: this module is imported both by the harness side (``run.py``,
``scenarios.py``, which must not depend on any aiokatcp implementation) and by the processes
that run the implementation being measured (``impl_server.py``, ``impl_client.py``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import os
import resource
import sys
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
#: StreamReader buffer limit for raw connections (a bulk request line can be large)
STREAM_LIMIT = 16 * 1024 * 1024
READ_CHUNK = 256 * 1024


def sensor_names(n: int) -> List[str]:
    """Names of the benchmark sensors, identical on every side."""
    return [f"bench.sensor-{i:05d}" for i in range(n)]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100); NaN for an empty sequence."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = math.ceil(pct / 100.0 * len(ordered)) - 1
    return ordered[max(0, min(len(ordered) - 1, rank))]


def rss_kib(pid: Optional[int] = None) -> int:
    """Resident set size (VmRSS) in KiB, from ``/proc``; -1 where unavailable."""
    path = f"/proc/{'self' if pid is None else pid}/status"
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def raise_nofile_limit() -> None:
    """Raise the soft open-files limit to the hard limit (many sockets are opened)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 65536
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def emit_json(obj: Dict[str, Any]) -> None:
    """Write one JSON line to stdout and flush it."""
    sys.stdout.write(json.dumps(obj, sort_keys=False) + "\n")
    sys.stdout.flush()


class Metrics:
    """Ordered collection of named results with units.

    Units ending in ``/s`` are throughputs (higher is better); everything else is a cost
    (lower is better). Counters that must be zero for a valid run use the unit ``count``.
    """

    def __init__(self) -> None:
        self.values: Dict[str, float] = {}
        self.units: Dict[str, str] = {}

    def add(self, name: str, value: float, unit: str) -> None:
        self.values[name] = float(value)
        self.units[name] = unit

    def as_dict(self) -> Dict[str, Any]:
        return {"metrics": self.values, "units": self.units}


class RawConn(asyncio.Protocol):
    """A KATCP connection over a raw asyncio protocol, with cheap line splitting.

    Lines are delivered without the trailing ``\\n`` (every server in this suite terminates
    lines with ``\\n`` only), either to :meth:`read_lines`/:meth:`readline` or, once
    :meth:`set_line_handler` was called, straight from ``data_received`` to the handler (no
    coroutine switch per read: used where the load generator must keep up with a flood).
    Reading is not flow-controlled; every scenario bounds how much it asks for.
    """

    def __init__(self) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.eof = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._partial = b""
        self._pending: Deque[bytes] = collections.deque()
        self._waiter: Optional[asyncio.Future[None]] = None
        self._handler: Optional[Callable[[List[bytes]], None]] = None

    @classmethod
    async def open(cls, port: int, host: str = HOST) -> RawConn:
        _, conn = await asyncio.get_running_loop().create_connection(cls, host, port)
        return conn

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if b"\n" not in data:
            self._partial += data
            return
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        if self._handler is not None:
            self._handler(lines)
        else:
            self._pending.extend(lines)
            self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.eof = True
        self._wake()
        if not self.closed.done():
            self.closed.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # API

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def set_line_handler(self, handler: Callable[[List[bytes]], None]) -> None:
        """Pass all further lines (and any already buffered) to `handler`."""
        self._handler = handler
        if self._pending:
            handler(list(self._pending))
            self._pending.clear()

    async def read_lines(self) -> List[bytes]:
        """Return every complete line received so far, waiting for at least one.

        Returns an empty list at end of stream.
        """
        while not self._pending and not self.eof:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        lines = list(self._pending)
        self._pending.clear()
        return lines

    async def readline(self) -> bytes:
        """Return the next line, or ``b""`` at end of stream."""
        while not self._pending:
            if self.eof:
                return b""
            self._pending.extend(await self.read_lines())
        return self._pending.popleft()

    async def read_until(self, prefix: bytes) -> Tuple[bytes, List[bytes]]:
        """Read lines until one starts with `prefix`.

        Returns that line and the lines skipped before it. Raises :exc:`ConnectionError`
        at end of stream.
        """
        skipped: List[bytes] = []
        while True:
            line = await self.readline()
            if line.startswith(prefix):
                return line, skipped
            if not line and self.eof and not self._pending:
                raise ConnectionError(f"connection closed while waiting for {prefix!r}")
            skipped.append(line)

    async def request(self, line: bytes, reply_prefix: bytes) -> bytes:
        """Send a request line (with ``\\n``) and return the matching reply line."""
        self.send(line)
        reply, _ = await self.read_until(reply_prefix)
        return reply

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        await self.closed


class ImplServer:
    """The measured ``DeviceServer``, run as ``impl_server.py`` in a subprocess.

    The subprocess prints one JSON line with its port, then answers JSON commands
    written to its stdin (one per line, one JSON reply line each) until stdin closes.
    """

    def __init__(self, python: str, *args: str) -> None:
        self.python = python
        self.args = args
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.port = 0
        self.info: Dict[str, Any] = {}

    async def __aenter__(self) -> ImplServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, timeout: float = 60.0) -> None:
        script = os.path.join(BENCH_DIR, "impl_server.py")
        self.proc = await asyncio.create_subprocess_exec(
            self.python,
            script,
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=STREAM_LIMIT,
        )
        self.info = await self._read_json(timeout)
        self.port = int(self.info["port"])

    async def _read_json(self, timeout: float) -> Dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"server process exited (rc={await self.proc.wait()})")
        result: Dict[str, Any] = json.loads(line)
        return result

    async def command(self, timeout: float = 120.0, **cmd: Any) -> Dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._read_json(timeout)

    async def stats(self) -> Dict[str, Any]:
        """Return the server's ``cpu`` (process time, s) and ``rss_kib``."""
        return await self.command(cmd="stats")

    async def stop(self, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


def escape(arg: bytes) -> bytes:
    """Escape one KATCP argument (written independently of any implementation)."""
    if not arg:
        return b"\\@"
    return (
        arg.replace(b"\\", b"\\\\")
        .replace(b" ", b"\\_")
        .replace(b"\0", b"\\0")
        .replace(b"\n", b"\\n")
        .replace(b"\r", b"\\r")
        .replace(b"\x1b", b"\\e")
        .replace(b"\t", b"\\t")
    )
