#!/usr/bin/env python3
"""The dishes example from threaded code: blocking calls, no ``async`` in sight.

Usage::

    python examples/dishes_threads.py [--dishes N]

The simulated dishes of ``examples/dishes.py`` (one with a broken drive) and
the devices talking to them run on an event loop in a background thread (an
:class:`aiokatcp.LoopThread`); this script drives them through
:class:`aiokatcp.BlockingDeviceGroup`, whose calls block like katcp-python's
thread-safe wrappers did.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

import aiokatcp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dishes  # found next to this file


def main(count: int = 4) -> List[str]:
    with aiokatcp.LoopThread() as lt:

        async def start() -> List[dishes.Dish]:
            servers = [dishes.Dish(0.2 + 0.1 * i, broken=(i == count - 1)) for i in range(count)]
            for server in servers:
                await server.start()
            return servers

        async def stop() -> None:
            for server in servers:
                await server.stop()

        servers = lt.run(start())
        try:
            addresses = {
                f"m{i:03d}": ("127.0.0.1", server.port) for i, server in enumerate(servers)
            }
            with aiokatcp.BlockingDeviceGroup(addresses, loop_thread=lt) as array:
                array.wait_synced(timeout=30)
                result = array.request("track", "Saturn", timeout=5)
                print(f"track accepted by {len(result.succeeded)} of {len(array)} dishes")
                tracking = array.wait(
                    "drive.mode", "tracking", timeout=30, quorum=count - 1, grace=0.5
                )
                print(f"tracking: {', '.join(tracking)}")
                first = array[tracking[0]]
                print(f"{tracking[0]} target: {first.sensor.target.value.decode()}")
                return tracking
        finally:
            lt.run(stop())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dishes", type=int, default=4, help="number of dishes (default 4)")
    main(parser.parse_args().dishes)
