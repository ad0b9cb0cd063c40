#!/usr/bin/env python3
"""Self-contained aiokatcp demo: a device server and a client talking on 127.0.0.1.

Usage::

    python examples/demo.py [--seconds SECONDS]

Needs nothing but this library. It starts the example device
(``examples/example_server.py``, a pretend signal generator) on a free port of
127.0.0.1, connects a :class:`aiokatcp.Client` to it, and shows ``?help``,
``?sensor-list``, typed requests, a request that fails, a request with
progress informs, and a few seconds of sensor updates arriving through a
:class:`aiokatcp.SensorWatcher`. Then it shuts both down and exits with
status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

import aiokatcp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import example_server  # found next to this file


def heading(text: str) -> None:
    print(f"\n== {text}")


def text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


async def main(seconds: float = 3.0) -> None:
    device = example_server.SignalGenerator("127.0.0.1", 0)
    await device.start()
    device.add_service_task(asyncio.create_task(device.update_sensors(0.25)))
    port = device.port
    print(f"Started the example device (SignalGenerator) on 127.0.0.1:{port}")
    try:
        async with await aiokatcp.Client.connect("127.0.0.1", port) as client:
            flags = "".join(sorted(client.protocol_flags))
            print(f"Connected: KATCP {client.protocol_version}, protocol flags {flags}")
            await show_requests(client)
            await show_sensors(client)
            await typed_requests(client)
            await watch_sensors(client, seconds)
    finally:
        await device.stop()
    heading("Client and device shut down cleanly")


async def show_requests(client: aiokatcp.Client) -> None:
    heading("?help: the device's requests")
    _, informs = await client.request("help")
    for inform in informs:
        name, summary = inform.arguments[:2]
        print(f"  ?{text(name):<24} {text(summary)}")


async def show_sensors(client: aiokatcp.Client) -> None:
    heading("?sensor-list: the device's sensors")
    _, informs = await client.request("sensor-list")
    for inform in informs:
        name, description, units, type_name, *params = (text(arg) for arg in inform.arguments)
        extra = f" ({' '.join(params)})" if params else ""
        unit = f" [{units}]" if units else ""
        print(f"  {name:<18} {type_name}{extra}{unit}: {description}")


async def typed_requests(client: aiokatcp.Client) -> None:
    Waveform = example_server.Waveform
    heading("Typed requests: Python values in, bytes out, decoded by type")
    reply, _ = await client.request("frequency", 2.5e6)
    print(f"  ?frequency 2500000.0 -> {aiokatcp.decode(float, reply[0])} Hz")
    reply, _ = await client.request("waveform", Waveform.SQUARE)
    print(f"  ?waveform square     -> {aiokatcp.decode(Waveform, reply[0])}")
    await client.request("output", True)
    reply, _ = await client.request("status")
    types = (float, float, Waveform, bool)
    values = [aiokatcp.decode(t, raw) for t, raw in zip(types, reply)]
    print(f"  ?status              -> {values}")

    heading("A request that fails")
    try:
        await client.request("frequency", 1e12)
    except aiokatcp.FailReply as exc:
        print(f"  ?frequency 1e12      -> FailReply: {exc}")

    heading("A request with progress informs (the device publishes a timeout hint)")
    reply, informs = await client.request("calibrate", 2)
    for inform in informs:
        print(f"  #{inform.name} {' '.join(text(arg) for arg in inform.arguments)}")
    print(f"  !calibrate ok {text(reply[0])}")


async def watch_sensors(client: aiokatcp.Client, seconds: float) -> None:
    heading(f"Sensor updates through a SensorWatcher, for {seconds:g} s")
    watcher = aiokatcp.SensorWatcher(
        client, enum_types=[example_server.Waveform, aiokatcp.DeviceStatus]
    )
    client.add_sensor_watcher(watcher)
    await watcher.synced.wait()
    print(f"  Synchronised: {len(watcher.sensors)} sensors mirrored")
    loop = asyncio.get_running_loop()
    start = loop.time()

    def show(sensor: aiokatcp.Sensor[Any], reading: aiokatcp.Reading[Any]) -> None:
        value = reading.value
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        status = reading.status.name.lower()
        print(f"  t={loop.time() - start:5.2f} s  {sensor.name:<14} = {shown} ({status})")

    for name in ("temperature", "uptime", "device-status"):
        watcher.sensors[name].attach(show)
    await asyncio.sleep(seconds)
    for name in ("temperature", "uptime", "device-status"):
        watcher.sensors[name].detach(show)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="how long to show sensor updates"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("siggen").setLevel(logging.ERROR)  # the device's own chatter
    asyncio.run(main(args.seconds))
