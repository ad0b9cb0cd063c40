"""Drive ``device.py`` under two interpreters with the same raw bytes; diff the transcripts.

Usage: python wire_audit.py REF_PYTHON OUR_PYTHON  (prints a unified diff; exit 1 if any)

Only timestamps, ports, library versions and traceback bodies are normalised.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
import subprocess
import sys
import time
from typing import List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))

# (bytes to send, regex that ends the wait; None = wait for quiet)
R = lambda name: rb"^![" + re.escape(name) + rb"]"  # noqa: E731


def reply(name: bytes, mid: Optional[int] = None) -> bytes:
    tail = rb"\[" + str(mid).encode() + rb"\]" if mid is not None else rb"[ \n]"
    return rb"(?m)^!" + re.escape(name) + tail


STEPS: List[Tuple[bytes, Optional[bytes]]] = [
    (b"?watchdog\n", reply(b"watchdog")),
    (b"?watchdog[1]\n", reply(b"watchdog", 1)),
    (b"?help\n", reply(b"help")),
    (b"?help scale\n", reply(b"help")),
    (b"?help nosuch\n", reply(b"help")),
    (b"?help add extra\n", reply(b"help")),
    (b"?version-list\n", reply(b"version-list")),
    (b"?add 2\n", reply(b"add")),
    (b"?add[7] 2 3\n", reply(b"add", 7)),
    (b"?add x\n", reply(b"add")),
    (b"?add 1 2 3\n", reply(b"add")),
    (b"?add\n", reply(b"add")),
    (b"?add 1.5\n", reply(b"add")),
    (b"?add \\@\n", reply(b"add")),
    (b"?add 1_000\n", reply(b"add")),
    (b"?add \\_1\n", reply(b"add")),
    (b"?add 0x10\n", reply(b"add")),
    (b"?scale 1.5\n", reply(b"scale")),
    (b"?scale 1.5 3\n", reply(b"scale")),
    (b"?scale 1e3 nan\n", reply(b"scale")),
    (b"?scale inf\n", reply(b"scale")),
    (b"?scale abc\n", reply(b"scale")),
    (b"?echo a \\_b \\@ c\\td\n", reply(b"echo")),
    (b"?echo\n", reply(b"echo")),
    (b"?echo \xff\n", reply(b"echo")),
    (b"?flag 1\n", reply(b"flag")),
    (b"?flag 0\n", reply(b"flag")),
    (b"?flag true\n", reply(b"flag")),
    (b"?paint red\n", reply(b"paint")),
    (b"?paint dark-green mode-run\n", reply(b"paint")),
    (b"?paint DARK_GREEN\n", reply(b"paint")),
    (b"?paint blue run\n", reply(b"paint")),
    (b"?at 1234567890.5\n", reply(b"at")),
    (b"?at now\n", reply(b"at")),
    (b"?where 1.2.3.4:80\n", reply(b"where")),
    (b"?where [::1]:80\n", reply(b"where")),
    (b"?where 1.2.3.4\n", reply(b"where")),
    (b"?where localhost:80\n", reply(b"where")),
    (b"?none-arg\n", reply(b"none-arg")),
    (b"?none-arg hi\n", reply(b"none-arg")),
    (b"?list 3\n", reply(b"list")),
    (b"?list 0\n", reply(b"list")),
    (b"?talk\n", reply(b"talk")),
    (b"?fail\n", reply(b"fail")),
    (b"?invalid\n", reply(b"invalid")),
    (b"?crash\n", reply(b"crash")),
    (b"?twice\n", None),
    (b"?inform-after\n", None),
    (b"?reply-and-return\n", None),
    (b"?manual\n", reply(b"manual")),
    (b"?slow[20] 0.3\n?watchdog[21]\n", reply(b"slow", 20)),
    (b"?nosuch\n", reply(b"nosuch")),
    (b"?restart\n", reply(b"restart")),
    (b"?request-timeout-hint\n", reply(b"request-timeout-hint")),
    (b"?sensor-sampling-clear\n", reply(b"sensor-sampling-clear")),
    (b"?configure\n", reply(b"configure")),
    (b"?sensor-list\n", reply(b"sensor-list")),
    (b"?sensor-list temp\n", reply(b"sensor-list")),
    (b"?sensor-list /^c/\n", reply(b"sensor-list")),
    (b"?sensor-list /zzz/\n", reply(b"sensor-list")),
    (b"?sensor-list /[/\n", reply(b"sensor-list")),
    (b"?sensor-list nosuch\n", reply(b"sensor-list")),
    (b"?sensor-value\n", reply(b"sensor-value")),
    (b"?sensor-value counter\n", reply(b"sensor-value")),
    (b"?sensor-value /e/\n", reply(b"sensor-value")),
    (b"?sensor-value nosuch\n", reply(b"sensor-value")),
    (b"?sensor-value /zzz/\n", reply(b"sensor-value")),
    (b"?sensor-sampling counter\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling auto-rate\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter event\n", reply(b"sensor-sampling")),
    (b"?set-counter 5\n", reply(b"set-counter")),
    (b"?sensor-sampling counter\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter none\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter,temp period 0.5\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter,temp none\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter event-rate 0.1 1\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter differential 2\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling temp differential-rate 0.5 1 2\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter,temp none\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling colour differential 2\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter,colour differential 2\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter,temp\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter period\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter period x\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter period 0\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter period -1\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter bogus\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling nosuch event\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter,counter event\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter,nosuch event\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter event 1\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling counter none 1\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling colour,mode,ok-flag auto\n", reply(b"sensor-sampling")),
    (b"?sensor-sampling colour,mode,ok-flag none\n", reply(b"sensor-sampling")),
    (b"?logit one\n", reply(b"logit")),
    (b"?log-level info\n", reply(b"log-level")),
    (b"?logit two\n", reply(b"logit")),
    (b"?log-level all\n", reply(b"log-level")),
    (b"?logit three\n", reply(b"logit")),
    (b"?log-level trace\n", reply(b"log-level")),
    (b"?log-level off\n", reply(b"log-level")),
    (b"?logit four\n", reply(b"logit")),
    (b"?log-level\n", reply(b"log-level")),
    (b"?log-level debug\n", reply(b"log-level")),
    (b"?log-level bogus\n", reply(b"log-level")),
    (b"?log-level warn\n", reply(b"log-level")),
    (b"?log-level warn extra\n", reply(b"log-level")),
    (b"?client-list\n", reply(b"client-list")),
    (b"?client-list x\n", reply(b"client-list")),
    (b"?watchdog x\n", reply(b"watchdog")),
    (b"?version-list x\n", reply(b"version-list")),
    (b"?bad\\q\n", None),
    (b"?bad\x1b\n", None),
    (b"?[1]\n", None),
    (b"?x[0]\n", None),
    (b"!weird ok\n#odd\n\n   \n", None),
    (b"?watchdog\r", reply(b"watchdog")),
    (b"?watchdog\r\n", reply(b"watchdog")),
    (b"?watchdog\t\t[", None),
    (b"\n", None),
    (b"?1abc\n", None),
    (b"?watchdog[99999999999]\n", None),
    (b"?nosuch[3]\n", reply(b"nosuch", 3)),
    (b"?sensor-value[4] counter\n", reply(b"sensor-value", 4)),
    (b"?echo[5] x\n", reply(b"echo", 5)),
    (b"?sensor-sampling[6] counter event\n", reply(b"sensor-sampling", 6)),
    (b"?set-counter[7] 11\n", reply(b"set-counter", 7)),
    (b"?sensor-sampling[8] counter none\n", reply(b"sensor-sampling", 8)),
    (b"?help[9] add\n", reply(b"help", 9)),
    (b"?list[10] 2\n", reply(b"list", 10)),
    (b"HALFCLOSE", None),  # another client sends a request and half-closes
    (b"SECOND", None),  # a second client connects
    (b"?client-list\n", reply(b"client-list")),
    (b"?slow[30] 5\n?halt[31]\n", rb"#disconnect"),
]

NUM = re.compile(rb"\b1[0-9]{9}\.[0-9]+\b")
PORT = re.compile(rb"127\.0\.0\.1:[0-9]+")


def normalise(data: bytes) -> bytes:
    data = NUM.sub(b"<TS>", data)
    data = PORT.sub(b"127.0.0.1:<PORT>", data)
    data = re.sub(rb"aiokatcp-[0-9][0-9.a-z+-]*", b"aiokatcp-<VER>", data)
    # traceback bodies: keep the first line and the exception line
    data = re.sub(
        rb"Traceback\\_\(most\\_recent\\_call\\_last\):\S*\\n([A-Z]\w*(?:Error|Exception))",
        rb"Traceback<...>\1",
        data,
    )
    return data


def read_until(sock: socket.socket, pattern: Optional[bytes], quiet: float = 0.25) -> bytes:
    buf = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if pattern is not None and re.search(pattern, buf):
            # collect whatever follows immediately (e.g. a later reply)
            sock.settimeout(0.1)
        else:
            sock.settimeout(quiet if pattern is None else 1.0)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            if pattern is None or re.search(pattern, buf):
                break
            continue
        if not chunk:
            buf += b"<EOF>\n"
            return buf
        buf += chunk
    return buf


def run(python: str) -> List[bytes]:
    proc = subprocess.Popen(
        [python, os.path.join(HERE, "device.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd="/tmp",
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    port = int(line.split()[1])
    out: List[bytes] = []
    sock = socket.create_connection(("127.0.0.1", port))
    out.append(b"== banner\n" + normalise(read_until(sock, None)))
    second: Optional[socket.socket] = None
    for data, pattern in STEPS:
        if data == b"HALFCLOSE":
            third = socket.create_connection(("127.0.0.1", port))
            third.sendall(b"?watchdog[1]\n?slow[2] 0.1\n")
            third.shutdown(socket.SHUT_WR)
            got = read_until(third, rb"<EOF>")
            third.close()
            out.append(b"== half-closing client\n" + normalise(got))
            out.append(b"== first client sees\n" + normalise(read_until(sock, None)))
            continue
        if data == b"SECOND":
            second = socket.create_connection(("127.0.0.1", port))
            out.append(b"== second client banner\n" + normalise(read_until(second, None)))
            out.append(b"== first client sees\n" + normalise(read_until(sock, None)))
            continue
        sock.sendall(data)
        got = read_until(sock, pattern)
        out.append(b"== " + repr(data).encode() + b"\n" + normalise(got))
    if second is not None:
        out.append(b"== second client at end\n" + normalise(read_until(second, None)))
    proc.wait(10)
    err = proc.stderr.read() if proc.stderr else b""
    out.append(b"== rc " + str(proc.returncode).encode() + b"\n")
    out.append(b"== stderr lines " + str(len(err.splitlines())).encode() + b"\n")
    return out


def main() -> int:
    ref, ours = sys.argv[1], sys.argv[2]
    a = b"".join(run(ref)).decode("utf-8", "backslashreplace").splitlines()
    b = b"".join(run(ours)).decode("utf-8", "backslashreplace").splitlines()
    with open(os.environ.get("WIRE_OUT", "/tmp/wire"), "w") as f:
        f.write("\n".join(a) + "\n====OURS====\n" + "\n".join(b) + "\n")
    diff = list(difflib.unified_diff(a, b, "2.3.0", "ours", lineterm="", n=2))
    print("\n".join(diff))
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
