"""How katcp-python 0.9.3's DeviceClient detects the protocol from connect informs.

Run with the katcp-python 0.9.3 interpreter:
    /work/ref/venv-katcp09/bin/python katcp09_client_detect.py > ../katcp_v4_client_detect.txt
A scripted peer on 127.0.0.1 sends each scenario's connect informs; the script
records what the client concluded (protocol, connected, convert_seconds(1.5)).
"""

import logging
import socket
import threading
import time

import katcp
from katcp import DeviceClient, ProtocolFlags

SCENARIOS = [
    ("v5", [b"#version-connect katcp-protocol 5.0-IM", b"#version-connect katcp-library x-1.0"]),
    ("v4", [b"#version dbe-2.1", b"#build-state dbesim-2.1b4"]),
    ("v4-build-state-only", [b"#build-state dbesim-2.1b4"]),
    ("nothing", []),
    ("v4-then-v5", [b"#version dbe-2.1", b"#version-connect katcp-protocol 5.0-IM"]),
    ("v5-then-v4", [b"#version-connect katcp-protocol 5.0-IM", b"#build-state dbesim-2.1b4"]),
    ("v5-library-then-v4", [b"#version-connect katcp-library x-1.0", b"#version dbe-2.1"]),
    ("unparsable", [b"#version-connect katcp-protocol junk"]),
    ("v6", [b"#version-connect katcp-protocol 6.0-MI"]),
    (
        "v5-twice-different",
        [b"#version-connect katcp-protocol 5.0-IM", b"#version-connect katcp-protocol 5.1-MIB"],
    ),
]


class Handler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(f"{record.levelname} {record.getMessage()}")


def convert(client):
    try:
        return client.convert_seconds(1.5)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def serve(lines, preset=None):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def peer():
        conn, _ = listener.accept()
        for line in lines:
            conn.sendall(line + b"\n")
            time.sleep(0.05)
        time.sleep(1.0)
        conn.close()

    t = threading.Thread(target=peer, daemon=True)
    t.start()
    handler = Handler()
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)
    client = DeviceClient("127.0.0.1", port, auto_reconnect=False)
    if preset is not None:
        client.preset_protocol_flags(preset)
    client.start(timeout=2)
    time.sleep(0.6)
    pf = client.protocol_flags
    proto = None if pf is None else f"{pf.major}.{pf.minor}-{b''.join(sorted(pf.flags)).decode()}"
    result = {
        "protocol": proto,
        "connected": client.is_connected(),
        "convert_seconds(1.5)": convert(client),
        "log": handler.records,
    }
    client.stop()
    client.join(timeout=2)
    logging.getLogger().removeHandler(handler)
    listener.close()
    return result


def main():
    print(
        f"# katcp-python {katcp.__version__} DeviceClient auto-detection (scripted peer, 127.0.0.1)"
    )
    for name, lines in SCENARIOS:
        print(f"# scenario: {name}")
        for line in lines:
            print("<<< " + line.decode())
        for key, value in serve(lines).items():
            print(f"= {key}: {value!r}")
    print("# scenario: preset-4.0-then-v5-informs")
    lines = SCENARIOS[0][1]
    for line in lines:
        print("<<< " + line.decode())
    for key, value in serve(lines, ProtocolFlags(4, 0, set())).items():
        print(f"= {key}: {value!r}")


if __name__ == "__main__":
    main()
