#!/usr/bin/env python3
"""The katcp-python tutorial's ``MyServer`` ("Writing your own Server"), ported to aiokatcp.

katcp-python -> aiokatcp:

- ``VERSION_INFO``/``BUILD_INFO`` -> ``VERSION``/``BUILD_STATE`` strings;
- ``setup_sensors`` + ``add_sensor`` -> ``self.sensors.add`` in ``__init__``;
- ``@request(Float(), Float())``/``@return_reply(Float())`` -> type annotations;
- ``raise AsyncReply`` + ``req.reply`` from a timer thread -> the handler waits
  for a future that the timer thread resolves; ``ctx.reply`` is thread-safe;
- ``req.make_reply(...)`` -> ``ctx.make_reply(...)``, returned from the handler.

``?eval`` evaluates only Python literals here (``ast.literal_eval``): the
original's ``eval`` would run any code a client sends.

Run: ``python seed_server.py [port]`` (default 5000).
"""

from __future__ import annotations

import ast
import asyncio
import enum
import random
import sys
import threading
import time
from typing import Tuple

import aiokatcp


class Fruit(enum.Enum):
    APPLE = "apple"
    BANANA = "banana"
    PEAR = "pear"
    KIWI = "kiwi"


class MyServer(aiokatcp.DeviceServer):
    VERSION = "example-api-1.0"
    BUILD_STATE = "example-implementation-0.1"

    #: How long ?pick-fruit takes, in seconds (a random whole number in this range).
    PICK_DELAY: Tuple[float, float] = (1, 5)

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        # (Numeric ranges such as the original's [-10000, 10000] are deprecated in KATCP v5.)
        self._add_result = aiokatcp.Sensor(float, "add.result", "Last ?add result.", "")
        self._time_result = aiokatcp.Sensor(
            aiokatcp.Timestamp, "time.result", "Last ?time result.", ""
        )
        self._eval_result = aiokatcp.Sensor(str, "eval.result", "Last ?eval result.", "")
        self._fruit_result = aiokatcp.Sensor(Fruit, "fruit.result", "Last ?pick-fruit result.", "")
        for sensor in (self._add_result, self._time_result, self._eval_result, self._fruit_result):
            self.sensors.add(sensor)

    async def request_add(self, ctx: aiokatcp.RequestContext, x: float, y: float) -> float:
        """Add two numbers"""
        r = x + y
        self._add_result.value = r
        return r

    async def request_time(self, ctx: aiokatcp.RequestContext) -> aiokatcp.Timestamp:
        """Return the current time in seconds since the Unix Epoch."""
        r = aiokatcp.Timestamp(time.time())
        self._time_result.value = r
        return r

    async def request_eval(self, ctx: aiokatcp.RequestContext, expression: str) -> str:
        """Evaluate a Python literal expression."""
        try:
            r = str(ast.literal_eval(expression))
        except (ValueError, SyntaxError) as exc:
            raise aiokatcp.FailReply(f"cannot evaluate {expression!r}: {exc}") from None
        self._eval_result.value = r
        return r

    def choose_fruit(self) -> Fruit | None:
        """Pick a fruit, or ``None`` for none (a method so that tests can fix the choice)."""
        choices: list[Fruit | None] = [*Fruit, None]
        return random.choice(choices)

    async def request_pick_fruit(self, ctx: aiokatcp.RequestContext) -> None:
        """Pick a random fruit."""
        r = self.choose_fruit()
        if r is None:
            raise aiokatcp.FailReply("No fruit.")
        low, high = self.PICK_DELAY
        delay = random.uniform(low, high)
        ctx.inform(f"Picking will take {delay:g} seconds")
        loop = asyncio.get_running_loop()
        picked = loop.create_future()

        def pick_handler() -> None:
            # Runs on the timer's thread: both calls are handed to the server's loop.
            self._fruit_result.value = r
            ctx.reply("ok", r)
            loop.call_soon_threadsafe(picked.set_result, None)

        threading.Timer(delay, pick_handler).start()
        await picked  # the request stays open (other clients are served meanwhile)

    async def request_raw_reverse(
        self, ctx: aiokatcp.RequestContext, *args: bytes
    ) -> aiokatcp.Message:
        """Reverse the message arguments (a reply built with ctx.make_reply)."""
        return ctx.make_reply("ok", *ctx.req.arguments[::-1])


async def main(port: int = 5000) -> None:
    server = MyServer("", port)
    await server.start()
    await server.join()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
