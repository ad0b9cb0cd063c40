"""The client against servers that accept TCP but never speak (issue 11).

Documented in ``doc/limits.rst``: ``Client.connect`` to such a server
returns after ``negotiation_timeout`` (a server without protocol flags is
assumed), and ``asyncio.wait_for(Client.connect(...), t)`` bounds the whole
connection, closing the client if it expires.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, List, Tuple

import pytest

from aiokatcp import Client


@pytest.fixture
async def silent_server() -> AsyncIterator[Tuple[int, List[asyncio.StreamReader]]]:
    """A TCP server that accepts connections and never sends a byte."""
    readers: List[asyncio.StreamReader] = []
    writers: List[asyncio.StreamWriter] = []

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        readers.append(reader)
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, readers
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_connect_to_silent_server_returns_after_negotiation_timeout(
    silent_server: Tuple[int, List[asyncio.StreamReader]],
) -> None:
    port, _ = silent_server
    loop = asyncio.get_running_loop()
    start = loop.time()
    client = await Client.connect("127.0.0.1", port, auto_reconnect=False, negotiation_timeout=3)
    assert 3 <= loop.time() - start < 4
    assert client.is_connected
    assert client.protocol_flags == frozenset()
    # The device never answers: only a request timeout ends a request.
    with pytest.raises(asyncio.TimeoutError):
        await client.request("watchdog", timeout=2)
    client.close()
    await client.wait_closed()


async def test_wait_for_bounds_connect_and_closes_the_client(
    silent_server: Tuple[int, List[asyncio.StreamReader]],
) -> None:
    port, readers = silent_server
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(Client.connect("127.0.0.1", port, negotiation_timeout=60), 2)
    # The abandoned attempt closed its connection: the server sees end of stream.
    (reader,) = readers
    assert await asyncio.wait_for(reader.read(), 10) == b""
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_wait_for_bounds_connect_to_a_server_that_hangs_up() -> None:
    # A server that accepts and closes at once: with auto_reconnect the client retries
    # for ever, so wait_for is what bounds Client.connect.
    accepted = 0

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(Client.connect("127.0.0.1", port), 30)
    assert accepted >= 2  # it did retry
    server.close()
    await server.wait_closed()
