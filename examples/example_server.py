#!/usr/bin/env python3
"""Example device server: a small "signal generator" with typed requests.

Usage::

    python examples/example_server.py [--host HOST] [--port PORT]

Then talk to it, for example with ``katcpcmd 127.0.0.1:7147 help`` or
``python examples/example_client.py``. It shows the usual parts of a device:
typed request handlers with return values, errors, request informs, a slow
request with a timeout hint, a background service task, forwarding Python
log records to clients as ``#log``, and graceful shutdown on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import ipaddress  # sensors
import logging
import random  # sensors
import signal
import time  # sensors
from typing import Optional, Tuple

import aiokatcp
from aiokatcp.server import request_timeout_hint

logger = logging.getLogger("siggen")


class Waveform(enum.Enum):
    """Output waveform (on the wire: ``sine``, ``square``, ``sawtooth``)."""

    SINE = 1
    SQUARE = 2
    SAWTOOTH = 3


class SignalGenerator(aiokatcp.DeviceServer):
    """A pretend signal generator."""

    VERSION = "siggen-api-1.0"
    BUILD_STATE = "siggen-1.0.0"

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.frequency = 1e6
        self.amplitude = 0.5
        self.waveform = Waveform.SINE
        self.enabled = False
        self.extra_versions["firmware"] = ("siggen-fw-3.2", "build-1234")
        self._add_sensors()

    def _add_sensors(self) -> None:
        """Create the device's sensors.

        Sensors (and ``?sensor-list``/``?sensor-value``/``?sensor-sampling``)
        are described in the sensors guide; the example sensors go here.
        """
        # --- sensors -------------------------------------------------------------------------
        # One sensor of each KATCP type. update_sensors() (a service task started in main)
        # keeps them current; clients subscribe with e.g. ?sensor-sampling temperature auto.
        nominal = aiokatcp.Sensor.Status.NOMINAL
        # float with v5 ranges: the status follows the value (nominal / warn / error),
        # and #sensor-list advertises "10.0 50.0 0.0 70.0"
        self.temperature_sensor = aiokatcp.Sensor(
            float,
            "temperature",
            "Board temperature",
            "degC",
            nominal_range=(10.0, 50.0),
            warn_range=(0.0, 70.0),
        )
        self.frequency_sensor = aiokatcp.Sensor(
            float, "frequency", "Output frequency", "Hz", self.frequency, nominal
        )
        # int; its "auto" strategy is rate-limited (at most every 0.5 s, at least every 10 s)
        self.uptime_sensor = aiokatcp.Sensor(
            int,
            "uptime",
            "Seconds since the device started",
            "s",
            0,
            nominal,
            auto_strategy=aiokatcp.SensorSampler.Strategy.EVENT_RATE,
            auto_strategy_parameters=(0.5, 10.0),
        )
        self.output_sensor = aiokatcp.Sensor(
            bool, "output-enabled", "Whether the output is on", "", self.enabled, nominal
        )
        self.waveform_sensor = aiokatcp.Sensor(  # discrete: sine, square, sawtooth
            Waveform, "waveform", "Output waveform", "", self.waveform, nominal
        )
        self.device_status_sensor = aiokatcp.Sensor(  # discrete: ok, degraded, fail
            aiokatcp.DeviceStatus, "device-status", "Overall health", "", None, nominal
        )
        serial = aiokatcp.Sensor(str, "serial-number", "Serial number", "", "SG-0042", nominal)
        build = aiokatcp.Sensor(bytes, "fpga-build", "FPGA image tag", "", b"fpga-7.1", nominal)
        reference = aiokatcp.Sensor(
            aiokatcp.Address,
            "reference-source",
            "Where the 10 MHz reference comes from",
            "",
            aiokatcp.Address(ipaddress.IPv4Address("10.0.0.5"), 7148),
            nominal,
        )
        started = aiokatcp.Sensor(
            aiokatcp.Timestamp,
            "start-time",
            "When the device started",
            "s",
            aiokatcp.Timestamp(time.time()),
            nominal,
        )
        for sensor in (
            self.temperature_sensor,
            self.frequency_sensor,
            self.uptime_sensor,
            self.output_sensor,
            self.waveform_sensor,
            self.device_status_sensor,
            serial,
            build,
            reference,
            started,
        ):
            self.sensors.add(sensor)
        # --- end of sensors ------------------------------------------------------------------

    # -- requests: the docstring's first line is the ?help summary ---------------------------

    async def request_frequency(
        self, ctx: aiokatcp.RequestContext, hz: Optional[float] = None
    ) -> float:
        """Query or set the output frequency in Hz.

        Parameters
        ----------
        hz
            New frequency (default: leave unchanged); 1 Hz to 6 GHz.
        """
        if hz is not None:
            if not 1.0 <= hz <= 6e9:
                raise aiokatcp.FailReply(f"frequency {hz} Hz is out of range (1 Hz to 6 GHz)")
            self.frequency = hz
            logger.info("Frequency set to %g Hz", hz)
        return self.frequency

    async def request_waveform(
        self, ctx: aiokatcp.RequestContext, waveform: Optional[Waveform] = None
    ) -> Waveform:
        """Query or set the waveform (sine, square or sawtooth)."""
        if waveform is not None:
            self.waveform = waveform
        return self.waveform

    def request_output(self, ctx: aiokatcp.RequestContext, enable: bool) -> None:
        """Switch the output on (1) or off (0).

        A plain ``def`` handler: it never waits, so it runs without a task.
        """
        self.enabled = enable
        logger.warning("Output %s", "enabled" if enable else "disabled")

    async def request_status(
        self, ctx: aiokatcp.RequestContext
    ) -> Tuple[float, float, Waveform, bool]:
        """Report frequency, amplitude, waveform and whether the output is on."""
        return self.frequency, self.amplitude, self.waveform, self.enabled

    async def request_presets(self, ctx: aiokatcp.RequestContext) -> None:
        """List the stored presets (one inform each, then ``ok <count>``)."""
        presets = [("fm-band", 100e6, Waveform.SINE), ("clock", 10e6, Waveform.SQUARE)]
        ctx.informs(presets)

    @request_timeout_hint(20.0)
    async def request_calibrate(self, ctx: aiokatcp.RequestContext, steps: int = 5) -> str:
        """Run the (slow) calibration, reporting progress as informs."""
        if steps < 1:
            raise aiokatcp.FailReply("steps must be at least 1")
        for step in range(1, steps + 1):
            await asyncio.sleep(1)
            ctx.inform("step", step, steps)
        return "calibrated"

    # -- background work -----------------------------------------------------------------------

    async def watch_temperature(self) -> None:
        """Service task: a failure here stops the server (and is re-raised by join)."""
        while True:
            await asyncio.sleep(10)
            logger.debug("Temperature nominal")

    # --- sensors: background updater --------------------------------------------------------

    async def update_sensors(self, interval: float = 1.0) -> None:
        """Service task: refresh the sensors every `interval` seconds."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        temperature = 35.0
        health = {
            aiokatcp.Sensor.Status.NOMINAL: aiokatcp.DeviceStatus.OK,
            aiokatcp.Sensor.Status.WARN: aiokatcp.DeviceStatus.DEGRADED,
            aiokatcp.Sensor.Status.ERROR: aiokatcp.DeviceStatus.FAIL,
        }
        while True:
            # A random walk that now and then leaves the nominal range.
            temperature = min(80.0, max(-5.0, temperature + random.uniform(-2.0, 2.0)))
            self.temperature_sensor.value = temperature  # status from the ranges
            status = self.temperature_sensor.status
            self.device_status_sensor.set_value(health[status], status)
            self.frequency_sensor.value = self.frequency
            self.output_sensor.value = self.enabled
            self.waveform_sensor.value = self.waveform
            self.uptime_sensor.value = int(loop.time() - start)
            await asyncio.sleep(interval)

    # --- end of sensors: background updater -------------------------------------------------

    async def on_stop(self) -> None:
        self.enabled = False
        logger.info("Output disabled for shutdown")


async def main(host: str, port: int) -> None:
    server = SignalGenerator(host, port)
    # Forward this program's log records (not aiokatcp's own) to clients as #log.
    logging.getLogger().addHandler(server.LogHandler(server))
    await server.start()
    server.add_service_task(asyncio.create_task(server.watch_temperature()))
    server.add_service_task(asyncio.create_task(server.update_sensors()))  # sensors
    bound_host, bound_port = server.address
    logger.info("Listening on %s:%d", bound_host, bound_port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.halt)
    await server.join()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7147)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(main(args.host, args.port))
