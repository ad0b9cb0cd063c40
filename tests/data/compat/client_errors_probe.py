"""Client connection errors and their log records (run under both interpreters, diff)."""

import asyncio
import logging
import socket

import aiokatcp

records = []


class Catch(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        records.append(f"{record.name} {record.levelname} {record.getMessage()}")


logging.getLogger().addHandler(Catch())
logging.getLogger().setLevel(logging.INFO)


async def fake_server(banner: bytes) -> int:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(banner)
        await w.drain()
        await asyncio.sleep(0.3)
        w.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv.sockets[0].getsockname()[1]


async def main() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    for label, coro_port in [
        ("refused", port),
        ("v4", await fake_server(b"#version-connect katcp-protocol 4.0\n")),
        ("garbage", await fake_server(b"#version-connect katcp-protocol xyz\n")),
        ("v6", await fake_server(b"#version-connect katcp-protocol 6.0-M\n")),
        ("disconnect", await fake_server(b"#disconnect bye\n")),
    ]:
        try:
            client = await asyncio.wait_for(
                aiokatcp.Client.connect("127.0.0.1", coro_port, auto_reconnect=False), 2
            )
        except Exception as exc:
            print(label, type(exc).__name__, repr(str(exc)).replace(str(port), "<PORT>"))
        else:
            print(label, "connected", sorted(client.protocol_flags))
            client.close()
            await client.wait_closed()
    for r in records:
        print("LOG", r.replace(str(port), "<PORT>"))


asyncio.run(main())
