"""A small device and a small client: the code under test in this example test suite."""

from __future__ import annotations

import asyncio

import aiokatcp


class Thermostat(aiokatcp.DeviceServer):
    """A thermostat: a target you set, and a temperature that follows it slowly."""

    VERSION = "thermostat-1.0"
    BUILD_STATE = "thermostat-1.0.0"

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.temperature = aiokatcp.Sensor(
            float, "temperature", "Current temperature", "degC", default=20.0
        )
        self.target = aiokatcp.Sensor(float, "target", "Target temperature", "degC", default=20.0)
        self.sensors.add(self.temperature)
        self.sensors.add(self.target)

    async def request_set_target(self, ctx: aiokatcp.RequestContext, value: float) -> None:
        """Set the target temperature (5 to 30 degC)."""
        if not 5 <= value <= 30:
            raise aiokatcp.FailReply("target must be between 5 and 30 degC")
        self.target.value = value

    async def request_settle(self, ctx: aiokatcp.RequestContext) -> float:
        """Move the temperature to the target, one degree a minute; reply with it."""
        while self.temperature.value != self.target.value:
            await asyncio.sleep(60)
            step = max(-1.0, min(1.0, self.target.value - self.temperature.value))
            self.temperature.value += step
        return self.temperature.value


async def heat_to(client: aiokatcp.Client, value: float) -> float:
    """Client code: set a thermostat's target and wait until it has settled."""
    await client.request("set-target", value)
    reply, _ = await client.request("settle")
    temperature: float = aiokatcp.decode(float, reply[0])
    return temperature
