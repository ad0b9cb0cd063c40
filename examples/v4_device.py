#!/usr/bin/env python3
"""A KATCP v4 device written with aiokatcp, and a client that reads it in seconds.

Usage::

    python examples/v4_device.py [--port PORT]    # serve the v4 device
    python examples/v4_device.py --demo           # serve on a free port and talk to it

The device sets ``PROTOCOL_INFO`` to a v4 :class:`aiokatcp.ProtocolFlags`: it
announces itself with ``#version``/``#build-state`` and puts milliseconds on
the wire, while its own code (sensors, ``time.time()``) stays in seconds. The
client detects v4 and converts back, so the demo prints seconds throughout.
See the "KATCP v4 devices" sections of the documentation.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import List

from aiokatcp import Client, DeviceServer, ProtocolFlags, Sensor, Timestamp


class OldBoard(DeviceServer):
    """A board that speaks KATCP v4, as many deployed devices do."""

    VERSION = "board-api-2.1"
    BUILD_STATE = "board-2.1.7"
    PROTOCOL_INFO = ProtocolFlags(4, 0, {ProtocolFlags.MULTI_CLIENT})

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.temperature = Sensor(float, "temperature", "Board temperature", "degC")
        self.last_reset = Sensor(Timestamp, "last-reset", "When the board was last reset")
        self.temperature.set_value(41.5)
        self.last_reset.set_value(Timestamp(time.time()))
        self.sensors.add(self.temperature)
        self.sensors.add(self.last_reset)


async def demo() -> List[str]:
    """Serve the board on a free port, talk to it with a client; return what was seen."""
    board = OldBoard("127.0.0.1", 0)
    await board.start()
    seen = []
    try:
        async with Client.connect("127.0.0.1", board.port, auto_reconnect=False) as client:
            seen.append(f"protocol: {client.protocol}, versions: {sorted(client.versions)}")
            reading = await client.sensor_reading("last-reset")
            seen.append(f"last reset {time.time() - reading.value:.0f} s ago (in seconds)")
            # A period in seconds: the client sends "period 500" to the v4 device.
            reply, _ = await client.request("sensor-sampling", "temperature", "period", 0.5)
            seen.append("sampling: " + b" ".join(reply).decode())
            seen.append(f"convert_seconds(0.5) = {client.convert_seconds(0.5)}")
    finally:
        await board.stop()
    return seen


async def serve(port: int) -> None:
    board = OldBoard("", port)
    await board.start()
    print(f"KATCP v4 board listening on port {board.port}")
    await board.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=7147)
    parser.add_argument("--demo", action="store_true", help="talk to the board and exit")
    args = parser.parse_args()
    if args.demo:
        for line in asyncio.run(demo()):
            print(line)
    else:
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
