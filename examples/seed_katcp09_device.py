#!/usr/bin/env python3
"""The katcp-python tutorial's ``MyServer``, *unported*: run it with katcp-python 0.9.

Used for the manual interop check of :class:`aiokatcp.BlockingClient`
against a katcp-python device (see doc/migration-katcp-python.rst). Needs
``katcp==0.9.*`` (with ``tornado<5``); the test suite does not run it.

Run: ``python seed_katcp09_device.py PORT``.
"""

import random
import sys
import threading
import time

from katcp import AsyncReply, DeviceServer, ProtocolFlags, Sensor
from katcp.kattypes import Discrete, Float, Str, Timestamp, request, return_reply


class MyServer(DeviceServer):
    VERSION_INFO = ("example-api", 1, 0)
    BUILD_INFO = ("example-implementation", 0, 1, "")
    PROTOCOL_INFO = ProtocolFlags(5, 0, {ProtocolFlags.MULTI_CLIENT, ProtocolFlags.MESSAGE_IDS})
    FRUIT = ["apple", "banana", "pear", "kiwi"]

    def setup_sensors(self):
        """Set up some server sensors."""
        self._add_result = Sensor.float("add.result", "Last ?add result.", "", [-10000, 10000])
        self._fruit_result = Sensor.discrete(
            "fruit.result", "Last ?pick-fruit result.", "", self.FRUIT
        )
        self.add_sensor(self._add_result)
        self.add_sensor(self._fruit_result)

    @request(Float(), Float())
    @return_reply(Float())
    def request_add(self, req, x, y):
        """Add two numbers"""
        r = x + y
        self._add_result.set_value(r)
        return ("ok", r)

    @request()
    @return_reply(Timestamp())
    def request_time(self, req):
        """Return the current time in seconds since the Unix Epoch."""
        return ("ok", time.time())

    @request(Str())
    @return_reply(Str())
    def request_echo(self, req, text):
        """Echo the argument."""
        return ("ok", text)

    @request()
    @return_reply(Discrete(FRUIT))
    def request_pick_fruit(self, req):
        """Pick a random fruit (answered later from a timer thread)."""
        r = random.choice(self.FRUIT)
        req.inform("Picking will take 0.1 seconds")

        def pick_handler():
            self._fruit_result.set_value(r)
            req.reply("ok", r)

        threading.Timer(0.1, pick_handler).start()
        raise AsyncReply


if __name__ == "__main__":
    server = MyServer("127.0.0.1", int(sys.argv[1]))
    server.set_concurrency_options(thread_safe=True, handler_thread=False)
    server.start()
    print("katcp-python device listening", flush=True)
    server.join()
