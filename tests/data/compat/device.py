"""A typical aiokatcp 2.x device, runnable under 2.3.0 and under this library.

Prints ``PORT <n>`` once listening; exits when halted. Used by
``wire_audit.py`` to compare byte transcripts of the two implementations.
"""

import asyncio
import enum
import ipaddress
import logging
import sys
from typing import Optional, Tuple

import aiokatcp
from aiokatcp import Address, Sensor, SensorSampler, Timestamp


class Colour(enum.Enum):
    RED = 1
    DARK_GREEN = 2
    BLUE = 3


class Mode(enum.Enum):
    IDLE = 0
    RUN = 1

    @property
    def katcp_value(self) -> bytes:
        return b"mode-" + self.name.lower().encode()


class Device(aiokatcp.DeviceServer):
    VERSION = "compat-api-1.0"
    BUILD_STATE = "compat-1.0.0"

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0)
        self.sensors.add(Sensor(int, "counter", "A counter", "count", default=3))
        self.sensors.add(Sensor(float, "temp", "Temperature", "degC", default=21.5))
        self.sensors.add(Sensor(bool, "ok-flag", "A flag", default=True))
        self.sensors.add(Sensor(str, "label", "A label", default="hello world"))
        self.sensors.add(Sensor(bytes, "raw", "Raw bytes", default=b"a\x00b"))
        self.sensors.add(Sensor(Colour, "colour", "An enum", default=Colour.DARK_GREEN))
        self.sensors.add(Sensor(Mode, "mode", "Custom values"))
        self.sensors.add(Sensor(Timestamp, "when", "A time", "s", default=Timestamp(1234567890.5)))
        self.sensors.add(
            Sensor(
                Address,
                "addr",
                "An address",
                default=Address(ipaddress.ip_address("10.0.0.1"), 7147),
            )
        )
        self.sensors.add(
            Sensor(
                aiokatcp.DeviceStatus,
                "device-status",
                "Status",
                default=aiokatcp.DeviceStatus.OK,
                initial_status=Sensor.Status.NOMINAL,
            )
        )
        self.sensors.add(
            Sensor(
                float,
                "auto-rate",
                "Auto strategy sensor",
                auto_strategy=SensorSampler.Strategy.EVENT_RATE,
                auto_strategy_parameters=(0.5, 10.0),
            )
        )

    async def request_add(self, ctx: aiokatcp.RequestContext, x: int, y: int = 1) -> int:
        """Add two integers."""
        return x + y

    async def request_scale(
        self, ctx: aiokatcp.RequestContext, x: float, factor: Optional[float] = None
    ) -> float:
        """Scale a float.

        Longer help text, second paragraph.
        """
        return x * (factor if factor is not None else 2.0)

    async def request_echo(self, ctx: aiokatcp.RequestContext, *args: str) -> Tuple:
        """Echo the arguments."""
        return tuple(args)

    async def request_flag(self, ctx: aiokatcp.RequestContext, value: bool) -> bool:
        """Negate a boolean."""
        return not value

    async def request_paint(
        self, ctx: aiokatcp.RequestContext, colour: Colour, mode: Mode = Mode.IDLE
    ) -> Tuple:
        """Set a colour."""
        self.sensors["colour"].value = colour
        return colour, mode

    async def request_at(self, ctx: aiokatcp.RequestContext, when: Timestamp) -> Timestamp:
        """Echo a timestamp."""
        return Timestamp(when + 1)

    async def request_where(self, ctx: aiokatcp.RequestContext, addr: Address) -> Address:
        """Echo an address."""
        return addr

    async def request_set_counter(self, ctx: aiokatcp.RequestContext, value: int) -> None:
        """Set the counter sensor."""
        self.sensors["counter"].set_value(value, timestamp=1000000000.25)

    async def request_list(self, ctx: aiokatcp.RequestContext, n: int) -> None:
        """Send n informs."""
        ctx.informs([(i, f"item {i}") for i in range(n)])

    async def request_talk(self, ctx: aiokatcp.RequestContext) -> str:
        """Inform, then mass-inform, then reply."""
        ctx.inform("one", 1.5, True)
        self.mass_inform("broadcast", "to all", 7)
        return "done"

    async def request_slow(self, ctx: aiokatcp.RequestContext, delay: float = 0.2) -> str:
        """A slow request."""
        ctx.inform("working")
        await asyncio.sleep(delay)
        return "slept"

    async def request_fail(self, ctx: aiokatcp.RequestContext) -> None:
        """Always fails."""
        raise aiokatcp.FailReply("no good")

    async def request_invalid(self, ctx: aiokatcp.RequestContext) -> None:
        """Always invalid."""
        raise aiokatcp.InvalidReply("not like that")

    async def request_crash(self, ctx: aiokatcp.RequestContext) -> None:
        """Raises an uncaught exception."""
        raise ZeroDivisionError("boom")

    async def request_twice(self, ctx: aiokatcp.RequestContext) -> None:
        """Replies twice."""
        ctx.reply("ok", "first")
        ctx.reply("ok", "second")

    async def request_inform_after(self, ctx: aiokatcp.RequestContext) -> None:
        """Informs after replying."""
        ctx.reply("ok")
        ctx.inform("late")

    async def request_reply_and_return(self, ctx: aiokatcp.RequestContext) -> int:
        """Replies and returns a value."""
        ctx.reply("ok")
        return 1

    async def request_logit(self, ctx: aiokatcp.RequestContext, text: str) -> None:
        """Log a warning through Python logging (forwarded by LogHandler)."""
        logging.getLogger("device").warning("%s", text)
        logging.getLogger("device").debug("debug %s", text)

    async def request_add_sensor(self, ctx: aiokatcp.RequestContext, name: str) -> None:
        """Add an integer sensor and announce it."""
        self.sensors.add(Sensor(int, name, "added", default=7, initial_status=Sensor.Status.WARN))
        self.mass_inform("interface-changed", "sensor-list")

    async def request_remove_sensor(self, ctx: aiokatcp.RequestContext, name: str) -> None:
        """Remove a sensor and announce it."""
        self.sensors.discard(self.sensors[name])
        self.mass_inform("interface-changed", "sensor-list")

    async def request_manual(self, ctx: aiokatcp.RequestContext) -> None:
        """Replies by hand."""
        ctx.reply("ok", 1, "two")

    async def request_none_arg(
        self, ctx: aiokatcp.RequestContext, name: Optional[str] = None
    ) -> str:
        """Optional str."""
        return "none" if name is None else name


async def main() -> None:
    server = Device()
    logging.getLogger().addHandler(server.LogHandler(server))
    logging.getLogger().setLevel(logging.DEBUG)
    await server.start()
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    await server.join()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
