#!/usr/bin/env python3
"""Query a katcp-python 0.9 device (``seed_katcp09_device.py``) with BlockingClient.

The manual interop check recorded in doc/migration-katcp-python.rst.

Run: ``python seed_katcp09_check.py PORT``.
"""

from __future__ import annotations

import sys
import threading

import aiokatcp


def main(port: int) -> None:
    with aiokatcp.BlockingClient("127.0.0.1", port) as client:
        client.wait_connected(timeout=10)
        print("protocol flags:", sorted(client.protocol_flags))
        print("add:", client.request("add", 2, 3.5))
        print("add.result:", client.sensor_value("add.result"))
        reply, informs = client.request("help")
        print("help:", reply, len(informs), "informs")
        print("pick-fruit:", client.request("pick-fruit"))
        print("fruit.result:", client.sensor_value("fruit.result"))
        print("future echo:", client.future_request("echo", "hi").result(10))
        done = threading.Event()
        client.callback_request(
            "echo",
            "cb",
            inform_cb=print,
            reply_cb=lambda msg: (print("callback reply:", msg), done.set()),
        )
        done.wait(10)
        try:
            client.request("add", "x", 1)
        except aiokatcp.FailReply as exc:
            print("FailReply:", exc)
        results = []
        threads = [
            threading.Thread(target=lambda i=i: results.append(client.request("echo", i)[0]))
            for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        print("8 threads:", sorted(r[0] for r in results))


if __name__ == "__main__":
    main(int(sys.argv[1]))
