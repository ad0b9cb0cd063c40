"""Codec micro-benchmark: ``Message.parse`` and ``bytes(msg)`` throughput.

Usage: ``python benchmarks/bench_codec.py [--quick] [--json] [--messages N]``

Runs against whatever ``aiokatcp`` the interpreter imports. The workload is a fixed,
seeded mix of wire lines written by hand (so it is byte-identical for every implementation):

* ~55% ``#sensor-status`` informs (float, integer, boolean, discrete and timestamp values,
  timestamps with microseconds),
* ~20% requests with message ids (``?sensor-sampling``, ``?echo`` with arguments needing
  escapes, ``?add``, ``?sensor-value``),
* ~15% replies with message ids,
* ~10% ``#log`` informs whose text needs escaping (spaces, backslashes, tabs, newlines, empty).

Three measurements, each the median over several timed rounds:

``parse``
    ``Message.parse(line)`` for every line of the mix.
``encode``
    ``bytes(msg)`` for every message parsed from the mix.
``build+encode``
    ``bytes(Message.inform("sensor-status", Timestamp, 1, name, "nominal", float))``, i.e.
    the server's per-update path through the type registry.

Also reports how many messages do not survive ``parse(bytes(parse(line)))`` unchanged (must
be 0). Prints a human-readable summary, or one JSON line with ``--json``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

import _benchutil

import aiokatcp

_TEXTS = [
    b"Temperature above threshold: 45.2 C (limit 40.0)",
    b"C:\\data\\captures\\run 17",
    b"column\tseparated\tvalues",
    b"first line\nsecond line\r\n",
    b"",
    b"escape \x1b[0m and nul \x00 bytes",
    b"plain-argument",
    b"unicode \xc2\xb5s and \xe2\x9c\x93",
]
_STATUSES = [b"nominal", b"nominal", b"nominal", b"warn", b"error", b"unknown"]
_COMPONENTS = [b"rx", b"dig", b"ap", b"cbf", b"anc"]
_QUANTITIES = [b"temperature", b"voltage", b"current", b"lock", b"mode", b"last-update"]


def make_lines(n: int, seed: int = 20250517) -> List[bytes]:
    """Return `n` wire lines (each ending in ``\\n``) of the realistic mix."""
    esc = _benchutil.escape
    rng = random.Random(seed)
    t0 = 1_712_345_678.0
    lines: List[bytes] = []
    for i in range(n):
        ts = repr(round(t0 + i * 0.0123457 + rng.random(), 6)).encode()
        mid = str(rng.randrange(1, 2**31 - 1)).encode()
        name = b"m%03d.%s.%s" % (
            rng.randrange(64),
            rng.choice(_COMPONENTS),
            rng.choice(_QUANTITIES),
        )
        kind = rng.random()
        if kind < 0.40:
            value = repr(rng.uniform(-100.0, 100.0)).encode()
            line = b"#sensor-status %s 1 %s %s %s" % (ts, name, rng.choice(_STATUSES), value)
        elif kind < 0.55:
            value = rng.choice(
                [
                    str(rng.randrange(-(10**9), 10**9)).encode(),
                    rng.choice([b"0", b"1"]),
                    rng.choice([b"locked", b"unlocked", b"ready-to-observe"]),
                    repr(round(t0 - rng.random() * 1e5, 6)).encode(),
                ]
            )
            line = b"#sensor-status %s 1 %s nominal %s" % (ts, name, value)
        elif kind < 0.75:
            sub = rng.random()
            if sub < 0.3:
                line = b"?sensor-sampling[%s] %s event-rate 0.5 10.0" % (mid, name)
            elif sub < 0.6:
                args = b" ".join(esc(rng.choice(_TEXTS)) for _ in range(rng.randrange(1, 5)))
                line = b"?echo[%s] %s" % (mid, args)
            elif sub < 0.8:
                line = b"?add[%s] %d %d" % (mid, rng.randrange(10**6), rng.randrange(10**6))
            else:
                line = b"?sensor-value[%s] %s" % (mid, name)
        elif kind < 0.90:
            sub = rng.random()
            if sub < 0.5:
                line = b"!sensor-value[%s] ok 1" % mid
            elif sub < 0.8:
                line = b"!echo[%s] ok %s %s" % (mid, esc(rng.choice(_TEXTS)), esc(b""))
            else:
                line = b"!sensor-sampling[%s] fail %s" % (mid, esc(b"Unknown sensor '%s'" % name))
        else:
            level = rng.choice([b"info", b"warn", b"error", b"debug"])
            text = esc(rng.choice(_TEXTS) + b" (" + name + b")")
            line = b"#log %s %s katcp.device.%s %s" % (level, ts, rng.choice(_COMPONENTS), text)
        lines.append(line + b"\n")
    return lines


def make_readings(n: int, seed: int = 7) -> List[Tuple[aiokatcp.Timestamp, str, float]]:
    rng = random.Random(seed)
    return [
        (
            aiokatcp.Timestamp(1_712_345_678.0 + i * 0.01),
            f"m{rng.randrange(64):03d}.rx.temperature",
            rng.uniform(-100.0, 100.0),
        )
        for i in range(n)
    ]


def measure(func: Callable[[], int], rounds: int, min_time: float) -> float:
    """Median items/s of `func` (which processes and returns an item count) over `rounds`."""
    start = time.perf_counter()
    func()  # warm-up and calibration
    once = max(time.perf_counter() - start, 1e-6)
    repeat = max(1, int(min_time / once))
    rates = []
    for _ in range(rounds):
        items = 0
        start = time.perf_counter()
        for _ in range(repeat):
            items += func()
        rates.append(items / (time.perf_counter() - start))
    return statistics.median(rates)


def run(n_messages: int, rounds: int, min_time: float) -> Dict[str, Any]:
    Message = aiokatcp.Message
    lines = make_lines(n_messages)
    msgs = [Message.parse(line) for line in lines]
    readings = make_readings(n_messages)

    def parse() -> int:
        parse = Message.parse
        for line in lines:
            parse(line)
        return len(lines)

    def encode() -> int:
        for msg in msgs:
            bytes(msg)
        return len(msgs)

    def build_encode() -> int:
        inform = Message.inform
        for ts, name, value in readings:
            bytes(inform("sensor-status", ts, 1, name, "nominal", value))
        return len(readings)

    mismatches = sum(Message.parse(bytes(msg)) != msg for msg in msgs)
    m = _benchutil.Metrics()
    m.add("parse_msgs_per_s", measure(parse, rounds, min_time), "msg/s")
    m.add("encode_msgs_per_s", measure(encode, rounds, min_time), "msg/s")
    m.add("build_encode_msgs_per_s", measure(build_encode, rounds, min_time), "msg/s")
    m.add("roundtrip_mismatches", mismatches, "count")
    params = {
        "messages": n_messages,
        "rounds": rounds,
        "min_time": min_time,
        "mean_line_bytes": round(sum(map(len, lines)) / len(lines), 1),
    }
    return {**m.as_dict(), "params": params}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--messages", type=int, default=2000, help="size of the message mix")
    args = parser.parse_args()
    rounds, min_time = (3, 0.15) if args.quick else (5, 0.3)
    result = run(args.messages, rounds, min_time)
    if args.json:
        _benchutil.emit_json({"version": aiokatcp.__version__, "python": sys.executable, **result})
        return
    print(f"aiokatcp {aiokatcp.__version__} ({aiokatcp.__file__}) on {sys.executable}")
    for name, value in result["metrics"].items():
        print(f"  {name:28s} {value:>14,.0f} {result['units'][name]}")


if __name__ == "__main__":
    main()
