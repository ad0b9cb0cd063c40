"""Run ``client_script.py`` under each implementation against each implementation's device.

Usage: python client_audit.py REF_PYTHON OUR_PYTHON  (prints diffs against the 2.3/2.3 run)
"""

import difflib
import os
import re
import socket
import subprocess
import sys
import threading
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))


class Proxy:
    """Forward one port to the device, recording what the client sends."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.sent: List[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(down, up, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if record:
                self.sent.append(data)
            try:
                dst.sendall(data)
            except OSError:
                return


def run(server_py: str, client_py: str) -> list:
    dev = subprocess.Popen(
        [server_py, os.path.join(HERE, "device.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd="/tmp",
    )
    assert dev.stdout is not None
    proxy = Proxy(int(dev.stdout.readline().split()[1].decode()))
    port = str(proxy.port)
    try:
        out = subprocess.run(
            [client_py, os.path.join(HERE, "client_script.py"), port],
            capture_output=True,
            timeout=60,
            cwd="/tmp",
        )
    finally:
        dev.kill()
        dev.wait()
    text = out.stdout.decode() + "".join(
        "STDERR " + line + "\n" for line in out.stderr.decode().splitlines()[-3:]
    )
    text += "".join("SENT " + line + "\n" for line in b"".join(proxy.sent).decode().splitlines())
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<PORT>", text)
    text = re.sub(r"\b1[0-9]{9}\.[0-9]+\b", "<TS>", text)
    return text.splitlines()


def main() -> int:
    ref, ours = sys.argv[1], sys.argv[2]
    base = run(ref, ref)
    rc = 0
    for label, srv, cli in [
        ("our client, 2.3 server", ref, ours),
        ("2.3 client, our server", ours, ref),
        ("our client, our server", ours, ours),
    ]:
        got = run(srv, cli)
        diff = list(difflib.unified_diff(base, got, "2.3/2.3", label, lineterm="", n=1))
        print(f"===== {label}: {len(diff)} diff lines")
        print("\n".join(diff))
        rc |= bool(diff)
    with open("/tmp/compat/client_base.txt", "w") as f:
        f.write("\n".join(base) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
