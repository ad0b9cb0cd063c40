#!/usr/bin/env python3
"""The aiokatcp server tutorial's example, gathered into one runnable server.

The tutorial's snippets (``request_greet``, a ``counter-queries`` sensor,
informs, ``mass_inform``, a ``?halt``/SIGINT shutdown with ``on_stop``),
with its ``Server('localhost', 4444)`` typo fixed.

Run: ``python seed_server_tutorial.py [port]`` (default 4444).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Tuple

import aiokatcp


class MyServer(aiokatcp.DeviceServer):
    VERSION = "myserver-api-1.0"
    BUILD_STATE = "myserver-1.0.1.dev0"

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.counter = aiokatcp.Sensor(
            int,
            "counter-queries",
            "number times ?counter was called",
            default=0,
            initial_status=aiokatcp.Sensor.Status.NOMINAL,
        )
        self.sensors.add(self.counter)
        self.stopped_cleanly = False

    async def request_greet(self, ctx: aiokatcp.RequestContext, name: str) -> Tuple[str, str]:
        """Take a person's name and greet them"""
        return "hello", name

    async def request_counter(self, ctx: aiokatcp.RequestContext) -> int:
        """Increment counter-queries and return its new value"""
        self.counter.value += 1
        return self.counter.value

    async def request_list_names(self, ctx: aiokatcp.RequestContext, *names: str) -> None:
        """Send one inform per name, then ok <count>"""
        ctx.informs([name] for name in names)

    async def request_announce(self, ctx: aiokatcp.RequestContext, text: str) -> None:
        """Send #announce to every client"""
        self.mass_inform("announce", text)

    async def on_stop(self) -> None:
        self.stopped_cleanly = True


async def main(port: int = 4444) -> None:
    server = MyServer("localhost", port)
    await server.start()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, server.halt)
    await server.join()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 4444))
