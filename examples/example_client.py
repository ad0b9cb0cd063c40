#!/usr/bin/env python3
"""Example client: list a device's requests and sensors, then follow them for a while.

Usage::

    python examples/example_client.py [HOST] [PORT] [SECONDS]

Start a device first, for example ``python examples/example_server.py``. This shows the
three ways of talking to a device: plain requests (``Client.request``), one-off sensor
queries (``Client.sensor_value``) and a :class:`aiokatcp.SensorWatcher` that keeps a
local copy of every sensor up to date.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import aiokatcp


def on_update(sensor: aiokatcp.Sensor[Any], reading: aiokatcp.Reading[Any]) -> None:
    print(f"  {sensor.name} = {reading.value!r} ({reading.status.name.lower()})")


async def main(host: str, port: int, seconds: float) -> None:
    async with await aiokatcp.Client.connect(host, port) as client:
        print(f"Connected; protocol flags: {''.join(sorted(client.protocol_flags))}")

        _, informs = await client.request("help")
        print("Requests:")
        for inform in informs:
            name, description = inform.arguments[:2]
            print(f"  ?{name.decode()}: {description.decode()}")

        watcher = aiokatcp.SensorWatcher(client)
        client.add_sensor_watcher(watcher)
        await watcher.synced.wait()
        print("Sensors:")
        for sensor in watcher.sensors.values():
            print(f"  {sensor.name} [{sensor.type_name}] = {sensor.value!r}")
            sensor.attach(on_update)

        if watcher.sensors:
            first = next(iter(watcher.sensors))
            print(f"One-off query of {first}: {await client.sensor_value(first)!r}")

        print(f"Updates for {seconds} s:")
        await asyncio.sleep(seconds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host", nargs="?", default="127.0.0.1")
    parser.add_argument("port", nargs="?", type=int, default=7147)
    parser.add_argument("seconds", nargs="?", type=float, default=5.0)
    args = parser.parse_args()
    try:
        asyncio.run(main(args.host, args.port, args.seconds))
    except KeyboardInterrupt:
        pass
