#!/usr/bin/env python3
"""The Twisted seed's demo client (``demotxclient.py``), ported to aiokatcp.

Twisted's chain of Deferred callbacks becomes plain ``await``; the
``inform_out_of_band`` handler stays as it is. :func:`main_futures` shows the
Deferred style without asyncio: :meth:`aiokatcp.BlockingClient.future_request`
returns a :class:`concurrent.futures.Future` to attach callbacks to.

Run: ``python seed_tx_client.py [port]`` (default 1235).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from typing import Any

import aiokatcp


class DemoClient(aiokatcp.Client):
    def inform_out_of_band(self) -> None:
        print("out of band")


async def main(port: int = 1235) -> None:
    async with await DemoClient.connect("localhost", port) as client:
        print("Connected")
        reply, informs = await client.request("foo")
        print(informs)
        print(reply)
        reply, informs = await client.request("sensor-value", "int_sensor")
        print(informs)
        print(reply)


def main_futures(port: int = 1235) -> None:
    done = threading.Event()
    with aiokatcp.BlockingClient("localhost", port) as client:

        def got_sensor_value(future: concurrent.futures.Future[Any]) -> None:
            reply, informs = future.result()
            print(informs)
            print(reply)
            done.set()

        def got_foo(future: concurrent.futures.Future[Any]) -> None:
            reply, informs = future.result()
            print(informs)
            print(reply)
            client.future_request("sensor-value", "int_sensor").add_done_callback(got_sensor_value)

        client.future_request("foo").add_done_callback(got_foo)
        done.wait(10)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1235))
