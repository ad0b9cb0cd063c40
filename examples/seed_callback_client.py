#!/usr/bin/env python3
"""The katcp-python tutorial's "Using the Callback Client", ported to aiokatcp.

``callback_request`` returns at once; the callbacks run on the client's loop
thread, so they must not block (hand data to other threads with a queue).
Unlike the original, the script waits for the reply before closing.

Run: ``python seed_callback_client.py [host [port]]``.
"""

from __future__ import annotations

import sys
import threading

import aiokatcp


def main(device_host: str = "localhost", device_port: int = 5000) -> None:
    done = threading.Event()

    def reply_cb(msg: aiokatcp.Message) -> None:
        print("Reply:", msg)
        done.set()

    def inform_cb(msg: aiokatcp.Message) -> None:
        print("Inform:", msg)

    with aiokatcp.BlockingClient(device_host, device_port) as client:
        client.callback_request("help", reply_cb=reply_cb, inform_cb=inform_cb)
        if not done.wait(timeout=10):
            print("No reply", file=sys.stderr)


if __name__ == "__main__":
    host = sys.argv[1] if len(sys.argv) > 1 else "localhost"
    main(host, int(sys.argv[2]) if len(sys.argv) > 2 else 5000)
