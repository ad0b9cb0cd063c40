#!/usr/bin/env python3
"""The katcp-python tutorial's "Writing your own Client" (``MyClient``), ported to aiokatcp.

``DeviceClient`` -> :class:`aiokatcp.Client`. ``send_message`` sends a
request without waiting; its reply, since no caller waits for it, goes to
``reply_<name>`` or ``unhandled_reply``. Informs go to ``inform_<name>``
(arguments decoded from the annotations) or ``unhandled_inform``. The
original's ``time.sleep(0.5)`` is replaced by waiting for the two replies.

Run: ``python seed_custom_client.py [host [port]]``.
"""

from __future__ import annotations

import asyncio
import sys

import aiokatcp
from aiokatcp import Message


class MyClient(aiokatcp.Client):
    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.replies = 0
        self.all_replied = asyncio.Event()

    def _replied(self) -> None:
        self.replies += 1
        if self.replies == 2:
            self.all_replied.set()

    def reply_help(self, msg: Message) -> None:
        """Print out help replies."""
        print(msg.name, msg.arguments)
        self._replied()

    def inform_help(self, meth: str, desc: str) -> None:
        """Print out help inform messages."""
        print("---------", meth, "---------")
        print()
        print(desc)
        print("----------------------------")

    def unhandled_reply(self, msg: Message) -> None:
        """Print out unhandled replies."""
        print("Unhandled reply", msg.name)
        self._replied()

    def unhandled_inform(self, msg: Message) -> None:
        """Print out unhandled informs."""
        print("Unhandled inform", msg.name)


async def main(device_host: str = "localhost", device_port: int = 5000) -> None:
    async with await MyClient.connect(device_host, device_port) as client:
        client.send_message(Message.request("help"))
        client.send_message(Message.request("watchdog"))
        await asyncio.wait_for(client.all_replied.wait(), 10)


if __name__ == "__main__":
    host = sys.argv[1] if len(sys.argv) > 1 else "localhost"
    asyncio.run(main(host, int(sys.argv[2]) if len(sys.argv) > 2 else 5000))
