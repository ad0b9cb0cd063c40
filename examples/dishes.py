#!/usr/bin/env python3
"""A telescope in miniature: command a group of simulated dishes, wait for a quorum.

Usage::

    python examples/dishes.py [--dishes N]

Starts N simulated dishes (device servers on free ports of 127.0.0.1), one
of which is broken (its drive never reaches ``tracking``), then, as a
control script would:

1. gathers them in an :class:`aiokatcp.DeviceGroup` and waits until they
   are inspected (requests and sensors known);
2. tells every dish to track a target with one ``group.request``;
3. waits until a quorum (all but one) report ``tracking``, giving
   stragglers a short grace period;
4. carries on with the dishes that made it, leaving the broken one out.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
from typing import List, Tuple

import aiokatcp


class DriveMode(enum.Enum):
    IDLE = 0
    SLEWING = 1
    TRACKING = 2


class Dish(aiokatcp.DeviceServer):
    """A pretend antenna: ``?track`` slews for a few seconds, then tracks."""

    VERSION = "dish-1.0"
    BUILD_STATE = "dish-1.0.0"

    def __init__(self, slew_time: float, broken: bool = False) -> None:
        super().__init__("127.0.0.1", 0)
        self.slew_time = slew_time
        self.broken = broken
        self.mode = aiokatcp.Sensor(DriveMode, "drive.mode", "Drive mode", default=DriveMode.IDLE)
        self.target = aiokatcp.Sensor(str, "target", "Current target", default="")
        self.sensors.add(self.mode)
        self.sensors.add(self.target)

    async def request_track(self, ctx: aiokatcp.RequestContext, target: str) -> None:
        """Slew to a target, then track it."""
        self.target.value = target
        self.mode.value = DriveMode.SLEWING
        self.add_service_task(asyncio.create_task(self._slew()))

    async def _slew(self) -> None:
        await asyncio.sleep(self.slew_time)
        if not self.broken:  # a broken drive stays in "slewing" forever
            self.mode.value = DriveMode.TRACKING


async def main(dishes: int = 4) -> List[str]:
    servers = [Dish(slew_time=1.0 + 0.5 * i, broken=(i == dishes - 1)) for i in range(dishes)]
    for server in servers:
        await server.start()
    try:
        addresses: dict[str, Tuple[str, int]] = {
            f"m{i:03d}": ("127.0.0.1", server.port) for i, server in enumerate(servers)
        }
        async with aiokatcp.DeviceGroup(addresses) as array:
            await array.wait_synced(timeout=30)
            print(f"{len(array)} dishes synced; requests: {', '.join(array['m000'].req)}")

            result = await array.request("track", "Jupiter", timeout=5)
            if not result.ok:
                print(f"track failed on {sorted(result.failed)}")

            tracking = await array.wait(
                "drive.mode", "tracking", timeout=30, quorum=dishes - 1, grace=2.0
            )
            left_out = [name for name in array if name not in tracking]
            print(f"tracking: {', '.join(tracking)}; left out: {', '.join(left_out) or 'none'}")

            subarray = array.subgroup(*tracking)
            targets = {
                name: dev.sensor.target.value.decode() for name, dev in subarray.members.items()
            }
            print(f"sub-array targets: {targets}")
            return tracking
    finally:
        for server in servers:
            await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dishes", type=int, default=4, help="number of dishes (default 4)")
    asyncio.run(main(parser.parse_args().dishes))
