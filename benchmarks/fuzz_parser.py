"""Long fuzz run of the incremental parser (:class:`aiokatcp.core.MessageParser`).

Usage: ``python benchmarks/fuzz_parser.py [--inputs N] [--seed S] [--quick]``

The suite runs a bounded hypothesis fuzz (``tests/test_codec.py``); this script runs the same
kind of check on many more inputs (default 10**6) from a seeded generator, so a run can be
repeated exactly. Each input is a byte string built from grammar fragments (types, names,
message ids of 0 to 5000 digits, escapes good and bad, CR/LF, NUL, ESC, VT, high bytes)
mixed with random bytes, cut into random chunks, and fed with a random line limit. Checked
for every input:

* ``feed``/``feed_eof`` only ever return :class:`Message` or :class:`KatcpSyntaxError`
  (any other exception is a failure: it would kill a connection);
* the chunking does not change the results (compared with feeding the input whole);
* the parser never holds ``limit`` bytes or more of an unfinished line;
* every message parsed has an id in 1..2**31-1 and survives ``parse(bytes(msg))``.

Prints one summary line; exits 1 (printing the first failing input) on a failure.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from typing import List, Tuple

from aiokatcp.core import KatcpSyntaxError, Message, MessageParser

_FRAGMENTS = [
    b"?",
    b"!",
    b"#",
    b"sensor-value",
    b"x",
    b"a-1",
    b"[",
    b"]",
    b"1",
    b"0",
    b"-1",
    b"2147483647",
    b"2147483648",
    b" ",
    b"\t",
    b"\\",
    b"\\_",
    b"\\@",
    b"\\\\",
    b"\\n",
    b"\\q",
    b"\r",
    b"\n",
    b"\r\n",
    b"\0",
    b"\x1b",
    b"\x0b",
    b"\x0c",
    b"\xff",
    b"ok",
    b"fail",
]
_LIMITS = [2, 3, 16, 64, 1000, 6000, 16 * 1024**2]


def _near_valid_line(rng: random.Random) -> bytes:
    """A message line (type, name, id, arguments, EOL), sometimes with one fragment spliced in."""
    line = rng.choice([b"?", b"!", b"#"]) + rng.choice([b"x", b"sensor-value", b"a-1", b"Q9"])
    if rng.random() < 0.5:
        digits = rng.choice([1, 2, 9, 10, 10, 11, 40, 4301])
        line += b"[" + str(rng.randrange(1, 10)).encode() + b"9" * (digits - 1) + b"]"
    for _ in range(rng.randrange(4)):
        line += rng.choice([b" ", b"\t", b"  "]) + rng.choice(
            [b"ok", b"1.5", b"\\_x", b"\\@", b"a\\\\b", b"\x0b", rng.randbytes(3)]
        )
    if rng.random() < 0.3:
        pos = rng.randrange(len(line) + 1)
        line = line[:pos] + rng.choice(_FRAGMENTS) + line[pos:]
    return line + rng.choice([b"\n", b"\r", b"\r\n", b" \n"])


def make_input(rng: random.Random) -> Tuple[bytes, List[int], int]:
    """One fuzz case: the bytes, where to cut them, and the parser's limit."""
    pieces: List[bytes] = []
    for _ in range(rng.randrange(30)):
        roll = rng.random()
        if roll < 0.4:
            pieces.append(_near_valid_line(rng))
        elif roll < 0.85:
            pieces.append(rng.choice(_FRAGMENTS))
        elif roll < 0.99:
            pieces.append(rng.randbytes(rng.randrange(1, 8)))
        else:
            pieces.append(b"9" * rng.choice([10, 11, 12, 4300, 4301, 5000]))
    data = b"".join(pieces)
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(6)))
    return data, cuts, rng.choice(_LIMITS)


def _describe(results: List[object]) -> List[object]:
    return [r if isinstance(r, Message) else ("error", str(r)) for r in results]


def check(data: bytes, cuts: List[int], limit: int) -> None:
    """Raise AssertionError (or whatever the parser raised) if an invariant breaks."""
    whole = MessageParser(limit)
    expected = whole.feed(data) + whole.feed_eof()
    parser = MessageParser(limit)
    out: List[object] = []
    prev = 0
    for cut in [*cuts, len(data)]:
        out.extend(parser.feed(data[prev:cut]))
        assert parser.buffered < limit, "parser holds a full-limit partial line"
        prev = cut
    out.extend(parser.feed_eof())
    assert _describe(out) == _describe(list(expected)), "chunking changed the results"
    for result in out:
        if isinstance(result, Message):
            assert result.mid is None or 1 <= result.mid <= 2**31 - 1, "message id out of range"
            assert Message.parse(bytes(result)) == result, "round trip changed the message"
        else:
            assert isinstance(result, KatcpSyntaxError), f"unexpected result {result!r}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10**6)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="10**4 inputs")
    args = parser.parse_args()
    n = 10**4 if args.quick else args.inputs
    rng = random.Random(args.seed)
    start = time.perf_counter()
    total_bytes = messages = errors = 0
    for i in range(n):
        data, cuts, limit = make_input(rng)
        try:
            check(data, cuts, limit)
        except Exception as exc:
            print(f"FAIL at input {i}: {type(exc).__name__}: {exc}")
            print(f"  data={data!r}\n  cuts={cuts} limit={limit}")
            return 1
        total_bytes += len(data)
        results = MessageParser(limit).feed(data)
        messages += sum(isinstance(r, Message) for r in results)
        errors += len(results) - sum(isinstance(r, Message) for r in results)
    elapsed = time.perf_counter() - start
    print(
        f"OK: {n} inputs ({total_bytes / 1e6:.1f} MB, {messages} messages, {errors} line "
        f"errors), seed {args.seed}, {elapsed:.0f} s, python {sys.version.split()[0]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
