"""Drive a device with katcp-python 0.9.3's client and print what it understood.

Run with the katcp-python 0.9.3 interpreter:
    /work/ref/venv-katcp09/bin/python katcp09_client_probe.py PORT

For the v4 integration: run it against an aiokatcp device with
``PROTOCOL_INFO = ProtocolFlags(4, 0, {"M"})`` and sensors like those of
``katcp09_server.py``; the output should match
``tests/data/katcp_v4_client_probe.txt`` (recorded against katcp-python's own
v4 server) for the common sensors. One ``key: value`` line per fact.
"""

import sys
import threading

from katcp import BlockingClient, Message

PORT = int(sys.argv[1])


class Probe(BlockingClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.statuses = []
        self.got_status = threading.Event()

    def inform_sensor_status(self, msg):
        """Record #sensor-status informs."""
        self.statuses.append(msg)
        self.got_status.set()


def text(msg):
    return bytes(msg).decode()


def main():
    client = Probe("127.0.0.1", PORT, auto_reconnect=False)
    client.start(timeout=5)
    client.wait_protocol(timeout=5)
    pf = client.protocol_flags
    print(f"protocol: {pf.major}.{pf.minor}-{b''.join(sorted(pf.flags)).decode()}")
    print(f"convert_seconds(1.5): {client.convert_seconds(1.5)!r}")
    requests = [
        ("watchdog",),
        ("sensor-value", "ts"),
        ("sensor-value", "temp"),
        ("sensor-list", "cnt"),
        ("sensor-list", "board.lru"),
        ("sensor-sampling", "temp", "period", str(client.convert_seconds(0.2))),
        ("sensor-sampling", "temp", "none"),
        ("version-list",),
        ("nosuch",),
    ]
    for req in requests:
        reply, informs = client.blocking_request(Message.request(*req), timeout=5)
        print(f"request: {' '.join(req)}")
        for inform in informs:
            print(f"  inform: {text(inform)}")
        print(f"  reply: {text(reply)}")
    client.got_status.wait(5)
    print(f"first sensor-status: {text(client.statuses[0]) if client.statuses else None}")
    client.stop()
    client.join(timeout=5)


if __name__ == "__main__":
    main()
