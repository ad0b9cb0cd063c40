#!/usr/bin/env python3
"""The katcp-python tutorial's "Using the Blocking Client", ported to aiokatcp.

``BlockingClient(host, port)`` starts its own loop thread (no ``start()``);
``with`` replaces ``stop()``/``join()``; ``wait_connected()`` replaces
``wait_protocol()``; ``request("help")`` replaces
``blocking_request(Message.request("help"))`` and returns the reply
arguments after ``ok`` (raising :exc:`aiokatcp.FailReply` on ``fail``).

Run: ``python seed_blocking_client.py [host [port]]``.
"""

from __future__ import annotations

import sys

import aiokatcp


def main(device_host: str = "localhost", device_port: int = 5000) -> None:
    with aiokatcp.BlockingClient(device_host, device_port) as client:
        client.wait_connected(timeout=10)  # optional: request() also waits, up to its timeout
        print("protocol flags:", sorted(client.protocol_flags))
        reply, informs = client.request("help")
        print(reply)
        for msg in informs:
            print(msg)


if __name__ == "__main__":
    host = sys.argv[1] if len(sys.argv) > 1 else "localhost"
    main(host, int(sys.argv[2]) if len(sys.argv) > 2 else 5000)
