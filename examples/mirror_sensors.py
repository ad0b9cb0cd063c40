#!/usr/bin/env python3
"""A proxy device that re-exposes another device's sensors on its own server.

Usage::

    python examples/mirror_sensors.py REMOTE_HOST REMOTE_PORT [--port PORT] [--prefix PREFIX]

A :class:`aiokatcp.SensorWatcher` keeps a local copy of every remote sensor (renamed
with an optional prefix), and the copies are simply added to this server's own sensor
set, so clients of the proxy can list, query and sample them like any other sensor.
While the remote device is unreachable the copies keep their last value with status
``unreachable`` (the status KATCP defines for exactly this case); when it comes back,
the watcher resynchronises and the copies follow again. Sensors added to or removed
from the remote device appear and disappear here too (and this server tells its own
clients with ``#interface-changed``).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Sequence, Union

import aiokatcp
from aiokatcp.server import DeviceServer


class PrefixWatcher(aiokatcp.SensorWatcher):
    """Mirrors every remote sensor under ``prefix + name``."""

    def __init__(self, client: aiokatcp.Client, prefix: str) -> None:
        super().__init__(client)
        self.prefix = prefix

    def rewrite_name(self, name: str) -> Union[str, Sequence[str]]:
        return self.prefix + name


class MirrorServer(DeviceServer):
    """A device server whose sensors are the (renamed) sensors of a remote device."""

    VERSION = "mirror-1.0"
    BUILD_STATE = "mirror-1.0.0"
    #: Tell our clients (#interface-changed) whenever the mirrored sensor set changes.
    AUTO_INTERFACE_CHANGED = True

    def __init__(
        self, host: str, port: int, remote_host: str, remote_port: int, prefix: str = ""
    ) -> None:
        super().__init__(host, port)
        self.client = aiokatcp.Client(remote_host, remote_port)
        self.watcher = PrefixWatcher(self.client, prefix)
        # The watcher's sensor set drives ours: copies come and go with the remote sensors.
        self.watcher.sensors.add_add_callback(self.sensors.add)
        self.watcher.sensors.add_remove_callback(self.sensors.discard)
        self.client.add_sensor_watcher(self.watcher)

    async def request_remote_connected(self, ctx: aiokatcp.RequestContext) -> bool:
        """Report whether the remote device is connected."""
        return self.client.is_connected

    async def on_stop(self) -> None:
        self.client.close()
        await self.client.wait_closed()


async def main(args: argparse.Namespace) -> None:
    server = MirrorServer(args.host, args.port, args.remote_host, args.remote_port, args.prefix)
    await server.start()
    print(f"Mirroring {args.remote_host}:{args.remote_port} on {args.host}:{args.port}")
    await server.join()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("remote_host")
    parser.add_argument("remote_port", type=int)
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--port", type=int, default=4445, help="port to serve on")
    parser.add_argument("--prefix", default="", help="prefix for the mirrored sensor names")
    try:
        asyncio.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        pass
