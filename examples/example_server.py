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
import logging
import signal
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
        # (placeholder: sensors of every type are added here)
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

    async def on_stop(self) -> None:
        self.enabled = False
        logger.info("Output disabled for shutdown")


async def main(host: str, port: int) -> None:
    server = SignalGenerator(host, port)
    # Forward this program's log records (not aiokatcp's own) to clients as #log.
    logging.getLogger().addHandler(server.LogHandler(server))
    await server.start()
    server.add_service_task(asyncio.create_task(server.watch_temperature()))
    bound = server.sockets[0].getsockname()
    logger.info("Listening on %s:%d", bound[0], bound[1])
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
