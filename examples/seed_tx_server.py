#!/usr/bin/env python3
"""The Twisted seed's demo server (``demotxserver.py``), ported to aiokatcp.

Twisted's ``DeviceProtocol.request_foo`` returning ``Message.reply(...)``
becomes a handler returning ``ctx.make_reply(...)``; ``send_message`` of an
inform becomes ``ctx.inform``. aiokatcp has no per-connection
``connectionMade`` hook, so the out-of-band inform is sent to every client
with ``mass_inform`` when ``?foo`` is handled.

Run: ``python seed_tx_server.py [port]`` (default 1235; 0 picks a free port).
"""

from __future__ import annotations

import asyncio
import sys

import aiokatcp

PORT = 1235


class DemoServer(aiokatcp.DeviceServer):
    VERSION = "demo-tx-1.0"
    BUILD_STATE = "demo-tx-1.0.0"

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.sensors.add(aiokatcp.Sensor(float, "float_sensor", "descr", "milithaum", default=0.5))
        self.sensors.add(aiokatcp.Sensor(int, "int_sensor", "descr2", "cows", default=3))

    async def request_foo(self, ctx: aiokatcp.RequestContext) -> aiokatcp.Message:
        """This is called when ?foo is called from the other side."""
        self.mass_inform("out-of-band")
        ctx.inform("fine")  # send one inform
        return ctx.make_reply("ok", 1)  # return reply


async def main(port: int = PORT) -> None:
    server = DemoServer("", port)
    await server.start()
    print(server.address)
    await server.join()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else PORT))
