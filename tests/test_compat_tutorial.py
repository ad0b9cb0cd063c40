"""Code written the way the aiokatcp 2.x server tutorial shows runs unchanged."""

import enum

import aiokatcp
from aiokatcp.testing import ScriptedPeer, running


class Colour(enum.Enum):
    RED = 1
    GREEN = 2


class TutorialServer(aiokatcp.DeviceServer):
    VERSION = "myserver-api-1.0"
    BUILD_STATE = "myserver-1.0.1.dev0"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.counter = aiokatcp.Sensor(
            int,
            "counter-queries",
            "number times ?counter was called",
            default=0,
            initial_status=aiokatcp.Sensor.Status.NOMINAL,
        )
        self.sensors.add(self.counter)
        self.errors = aiokatcp.Sensor(
            int,
            "errors",
            "error count",
            status_func=lambda value: (
                aiokatcp.Sensor.Status.NOMINAL if value == 0 else aiokatcp.Sensor.Status.WARN
            ),
        )
        self.sensors.add(self.errors)

    async def request_greet(self, ctx, name: str):
        """Take a person's name and greet them"""
        return "hello", name

    async def request_counter(self, ctx):
        """Count the queries and say which request this was"""
        self.counter.value += 1
        return ctx.msg.name, self.counter.value

    async def request_colours(self, ctx, *colours: Colour):
        """List the colours given, one inform each"""
        ctx.informs((colour,) for colour in colours)

    async def request_fail(self, ctx):
        """Always fail"""
        raise aiokatcp.FailReply("not today")


async def test_tutorial_server() -> None:
    server = TutorialServer("127.0.0.1", 0)
    async with running(server), await ScriptedPeer.connect_to(server) as peer:
        await peer.expect_connect()
        await peer.send(b"?greet[1] world")
        await peer.expect(b"!greet[1] ok hello world")
        await peer.send(b"?counter[2]")
        await peer.expect(b"!counter[2] ok counter 1")
        await peer.send(b"?colours[3] red green")
        await peer.expect(b"#colours[3] red")
        await peer.expect(b"#colours[3] green")
        await peer.expect(b"!colours[3] ok 2")
        await peer.send(b"?fail[4]")
        await peer.expect(b"!fail[4] fail not\\_today")
        server.errors.value = 3
        assert server.errors.status == aiokatcp.Sensor.Status.WARN
        await peer.send(b"?sensor-value[5] counter-queries")
        line = await peer.readline()
        assert line.startswith(b"#sensor-value[5] ")
        assert line.endswith(b" 1 counter-queries nominal 1")
