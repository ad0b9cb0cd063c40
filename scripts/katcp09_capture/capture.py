"""Capture byte-exact transcripts of a katcp-python 0.9.3 server (see ../README_katcp_v4.rst).

Usage (from the repository root):
    python3 scripts/katcp09_capture/capture.py /work/ref/venv-katcp09/bin/python

Starts ``katcp09_server.py`` for major 4 and 5 on 127.0.0.1, talks to it with a raw
socket and writes ``tests/data/katcp_v4_server_v4.txt`` and ``..._v5.txt``.
Format: ``# scenario: NAME`` starts a scenario, ``>>> `` prefixes a line we sent,
``<<< `` a line the server sent (without the final newline); ``# note:`` lines
are comments. Lines are ASCII, exactly as on the wire.
"""

import pathlib
import socket
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent.parent / "tests" / "data"


class Peer:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
        self.out = []

    def for_duration(self, seconds):
        """Record whatever arrives during `seconds` (used for periodic updates)."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            self.lines(quiet=left, limit=left)

    def lines(self, until=None, quiet=0.3, limit=5.0):
        """Read lines until one starts with `until` (or until `quiet` s pass with nothing)."""
        got = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                got.append(line)
                self.out.append(b"<<< " + line)
                if until is not None and line.split(b" ", 1)[0] == until:
                    return got
            self.sock.settimeout(quiet if until is None else limit)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                if until is None:
                    return got
                continue
            if not data:
                self.out.append(b"# note: connection closed by server")
                return got
            self.buf += data
        return got

    def scenario(self, name):
        self.out.append(b"# scenario: " + name.encode())

    def note(self, text):
        self.out.append(b"# note: " + text.encode())

    def send(self, line, until=None, quiet=0.3):
        self.out.append(b">>> " + line)
        self.sock.sendall(line + b"\n")
        if until is None:
            name = line.split(b" ", 1)[0].split(b"[", 1)[0]
            until = b"!" + name[1:]
            mid = line.split(b" ", 1)[0][len(name) :]
            until += mid
        return self.lines(until)


def run(python, major):
    proc = subprocess.Popen(
        [python, str(HERE / "katcp09_server.py"), str(major), "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(proc.stdout.readline().split()[1])
        p = Peer(port)
        ms = major == 4
        p.scenario("connect")
        p.lines(quiet=0.5)
        p.scenario("watchdog")
        p.send(b"?watchdog")
        p.scenario("help")
        p.send(b"?help")
        p.send(b"?help echo")
        p.send(b"?help nosuch")
        p.scenario("version-list")
        p.send(b"?version-list")
        p.scenario("sensor-list")
        p.send(b"?sensor-list")
        p.send(b"?sensor-list temp")
        p.send(b"?sensor-list nosuch")
        p.scenario("sensor-value")
        p.send(b"?sensor-value")
        p.send(b"?sensor-value ts")
        p.note("frac has reading timestamp 1700000000.1234567 s and float value 0.1")
        p.send(b"?sensor-value frac")
        p.scenario("sensor-sampling-query")
        p.send(b"?sensor-sampling temp")
        p.scenario("sensor-sampling-period")
        p.note("period 200 ms (v4) / 0.2 s (v5); updates collected for about 0.5 s")
        p.send(b"?sensor-sampling temp period " + (b"200" if ms else b"0.2"))
        p.for_duration(0.5)
        p.send(b"?sensor-sampling temp")
        p.send(b"?sensor-sampling temp none")
        p.lines(quiet=0.3)
        p.scenario("sensor-sampling-fractional-period")
        p.send(b"?sensor-sampling cnt period " + (b"1500.5" if ms else b"1.5005"))
        p.send(b"?sensor-sampling cnt none")
        p.send(b"?sensor-sampling frac period " + (b"0.5" if ms else b"0.0005"))
        p.send(b"?sensor-sampling frac none")
        p.lines(quiet=0.2)
        p.send(b"?sensor-sampling frac period abc")
        p.scenario("sensor-sampling-event")
        p.send(b"?sensor-sampling ts event")
        p.send(b"?sensor-sampling board.lru auto")
        p.send(b"?sensor-sampling ts none")
        p.send(b"?sensor-sampling board.lru none")
        p.scenario("sensor-sampling-differential")
        p.send(b"?sensor-sampling cnt differential 2")
        p.send(b"?sensor-sampling cnt none")
        p.scenario("sensor-sampling-event-rate")
        p.send(b"?sensor-sampling temp event-rate " + (b"100 1000" if ms else b"0.1 1"))
        p.send(b"?sensor-sampling temp none")
        p.lines(quiet=0.2)
        p.scenario("sensor-sampling-bulk")
        p.send(b"?sensor-sampling temp,cnt auto")
        p.send(b"?sensor-sampling temp,cnt none")
        p.lines(quiet=0.2)
        p.scenario("sensor-sampling-bad-period")
        p.send(b"?sensor-sampling temp period 0")
        p.scenario("request-timeout-hint")
        p.send(b"?request-timeout-hint")
        p.scenario("log")
        p.send(b"?log-level")
        p.send(b"?log-me")
        p.lines(quiet=0.3)
        p.scenario("unknown-request")
        p.send(b"?nosuch")
        p.scenario("message-id")
        p.send(b"?echo[5] hi", until=b"!echo")
        p.lines(quiet=0.3)
        p.send(b"?watchdog[7]", until=b"!watchdog")
        p.lines(quiet=0.3)
        p.scenario("client-list")
        p.send(b"?client-list")
        p.scenario("overlapping-requests")
        p.note("?slow 0.3 is answered asynchronously; ?echo sent while it is outstanding")
        p.out.append(b">>> ?slow 0.3")
        p.sock.sendall(b"?slow 0.3\n")
        p.send(b"?echo during-slow")
        p.lines(until=b"!slow")
        p.scenario("overlapping-same-name")
        p.note("two ?slow without ids: the shorter one is answered first")
        p.out.append(b">>> ?slow 0.4")
        p.sock.sendall(b"?slow 0.4\n")
        p.send(b"?slow 0.1")
        p.lines(until=b"!slow")
        p.sock.close()
        text = b"\n".join(p.out) + b"\n"
        # The client's own address appears in #client-list; mask the port.
        return text
    finally:
        proc.terminate()
        proc.wait()


def main():
    python = sys.argv[1] if len(sys.argv) > 1 else "/work/ref/venv-katcp09/bin/python"
    for major in (4, 5):
        text = run(python, major)
        (DATA / f"katcp_v4_server_v{major}.txt").write_bytes(text)
        print("wrote", major, len(text.splitlines()), "lines")


if __name__ == "__main__":
    main()
