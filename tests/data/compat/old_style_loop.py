"""2.x programs that build the server before a loop runs (get_event_loop style)."""

import asyncio
import warnings

import aiokatcp

warnings.simplefilter("ignore", DeprecationWarning)


class S(aiokatcp.DeviceServer):
    VERSION = "v"
    BUILD_STATE = "b"


loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
server = S("127.0.0.1", 0)
print("loop is set loop:", server.loop is loop)
loop.run_until_complete(server.start())
print("started", len(server.sockets))


async def use() -> None:
    port = server.sockets[0].getsockname()[1]
    client = await aiokatcp.Client.connect("127.0.0.1", port)
    print("client", await client.request("watchdog"))
    client.close()
    await client.wait_closed()


loop.run_until_complete(use())
loop.run_until_complete(server.stop())
print("stopped")
try:
    aiokatcp.Client("127.0.0.1", 1)
except Exception as exc:
    print("client outside loop:", type(exc).__name__, exc)
loop.close()
