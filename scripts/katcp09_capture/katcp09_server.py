"""A katcp-python 0.9.3 DeviceServer used to capture v4/v5 ground-truth transcripts.

Run with the katcp-python 0.9.3 interpreter (tornado < 5):
    /work/ref/venv-katcp09/bin/python katcp09_server.py {4|5} PORT
It prints ``READY <port>`` once listening. Sensors get fixed readings with fixed
timestamps so the transcripts are reproducible.
"""

import sys
import threading
import time

from katcp import DeviceServer, ProtocolFlags, Sensor
from katcp.kattypes import Float, Str, request, return_reply

MAJOR = int(sys.argv[1])
PORT = int(sys.argv[2])

if MAJOR == 4:
    PROTOCOL = ProtocolFlags(4, 0, {ProtocolFlags.MULTI_CLIENT})
else:
    PROTOCOL = ProtocolFlags(
        5,
        1,
        {
            ProtocolFlags.MULTI_CLIENT,
            ProtocolFlags.MESSAGE_IDS,
            ProtocolFlags.BULK_SET_SENSOR_SAMPLING,
            ProtocolFlags.REQUEST_TIMEOUT_HINTS,
        },
    )

TS = 1700000000.25  # fixed reading timestamp (seconds)


class CaptureServer(DeviceServer):
    VERSION_INFO = ("capture-api", 1, 0)
    BUILD_INFO = ("capture-impl", 0, 1, "")
    PROTOCOL_INFO = PROTOCOL

    def setup_sensors(self):
        self.s_float = Sensor.float("temp", "Temperature", "degC", [-50.0, 150.0])
        self.s_int = Sensor.integer("cnt", "A counter", "", [0, 100])
        self.s_ts = Sensor.timestamp("ts", "A timestamp", "")
        self.s_frac = Sensor.float("frac", "Sub-millisecond timestamps", "")
        self.s_lru = Sensor.lru("board.lru", "Board LRU", "")
        self.s_disc = Sensor.discrete("mode", "Mode", "", ["idle", "run"])
        self.s_bool = Sensor.boolean("ok-flag", "Boolean", "")
        self.s_str = Sensor.string("name", "a string", "")
        for s in [
            self.s_float,
            self.s_int,
            self.s_ts,
            self.s_lru,
            self.s_disc,
            self.s_bool,
            self.s_str,
            self.s_frac,
        ]:
            self.add_sensor(s)
        self.s_float.set_value(21.5, Sensor.WARN, TS)
        self.s_int.set_value(3, Sensor.NOMINAL, TS)
        self.s_ts.set_value(1600000000.5, Sensor.NOMINAL, TS)
        self.s_lru.set_value(Sensor.LRU_ERROR, Sensor.ERROR, TS)
        self.s_disc.set_value("run", Sensor.NOMINAL, TS)
        self.s_bool.set_value(True, Sensor.NOMINAL, TS)
        self.s_str.set_value("hello world", Sensor.NOMINAL, TS)
        self.s_frac.set_value(0.1, Sensor.NOMINAL, 1700000000.1234567)

    @request(Str(), major=MAJOR)
    @return_reply(Str(), major=MAJOR)
    def request_echo(self, req, text):
        """Echo the argument."""
        return ("ok", text)

    @request(Float(), major=MAJOR)
    @return_reply(major=MAJOR)
    def request_slow(self, req, delay):
        """Reply after a delay (seconds), to test overlapping requests."""

        def later():
            self.ioloop.add_callback(req.reply, "ok")

        threading.Timer(delay, later).start()
        from katcp import AsyncReply

        raise AsyncReply

    @request(major=MAJOR)
    @return_reply(major=MAJOR)
    def request_log_me(self, req):
        """Send a #log warn message with a fixed timestamp."""
        self.log.warn("captured log message", timestamp=TS)
        return ("ok",)


if __name__ == "__main__":
    server = CaptureServer("127.0.0.1", PORT)
    server.set_concurrency_options(thread_safe=False, handler_thread=False)
    server.start()
    server.wait_running(5)
    print(f"READY {server.bind_address[1]}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
