"""Client against a scripted peer: negotiation, requests, informs, callbacks, close.

The peer is a raw asyncio server on solipsism's in-memory network; each
accepted connection becomes a :class:`ScriptedPeer`, so the tests state the
exact lines on the wire.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from typing import List

import pytest

from aiokatcp import Client, Message, ProtocolError
from aiokatcp._backoff import backoff_delays
from aiokatcp.exceptions import FailReply, InvalidReply
from aiokatcp.server import DeviceServer, RequestContext
from aiokatcp.testing import PeerServer, client_for, running
from helpers import connected

V5_IDS = b"#version-connect katcp-protocol 5.1-MIB"
V5_NO_IDS = b"#version-connect katcp-protocol 5.0-M"


# -- negotiation ---------------------------------------------------------------------------------


async def test_negotiate_v5_with_ids(peers: PeerServer, client: Client) -> None:
    peer = await connected(peers, client)
    assert client.is_connected
    assert client.protocol_flags == frozenset("MIB")
    assert client.protocol_version == (5, 1)
    assert client.last_exc is None
    task = asyncio.create_task(client.request("echo", "hello", 3))
    await peer.expect(b"?echo[1] hello 3")
    await peer.send(b"!echo[1] ok hello 3")
    assert await task == ([b"hello", b"3"], [])


async def test_negotiate_v5_without_ids(peers: PeerServer, client: Client) -> None:
    peer = await connected(peers, client, V5_NO_IDS)
    assert client.protocol_flags == frozenset("M")
    task = asyncio.create_task(client.request("echo", "hello"))
    await peer.expect(b"?echo hello")
    await peer.send(b"#echo an-inform", b"!echo ok hello")
    reply, informs = await task
    assert reply == [b"hello"]
    assert informs == [Message.inform("echo", b"an-inform")]


async def test_no_version_connect_falls_back_after_timeout(peers: PeerServer) -> None:
    client = Client("127.0.0.1", peers.port, negotiation_timeout=3.0)
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        peer = await peers.accept(greeting=None)
        await client.wait_connected()
        assert loop.time() - start == pytest.approx(3.0)
        assert client.protocol_version is None
        assert client.protocol_flags == frozenset()
        # Without ids, requests are serialised: the second is only sent after the first reply.
        first = asyncio.create_task(client.request("first"))
        second = asyncio.create_task(client.request("second"))
        await peer.expect(b"?first")
        await asyncio.sleep(1)
        assert not second.done()
        await peer.send(b"!first ok")
        await peer.expect(b"?second")
        await peer.send(b"!second ok 2")
        assert await first == ([], [])
        assert await second == ([b"2"], [])
        # A late #version-connect upgrades the assumed protocol.
        await peer.send(V5_IDS)
        await asyncio.sleep(0.1)
        assert client.protocol_flags == frozenset("MIB")
        task = asyncio.create_task(client.request("third"))
        await peer.expect(re.compile(rb"\?third\[\d+\]"))
        task.cancel()
    finally:
        client.close()
        await client.wait_closed()


@pytest.mark.parametrize("line", [b"#version dbe-2.1", b"#build-state dbesim-2.1b4"])
async def test_v4_connect_informs_detected(peers: PeerServer, line: bytes) -> None:
    client = Client("127.0.0.1", peers.port, negotiation_timeout=30.0)
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await peers.accept(greeting=line)
        await client.wait_connected()
        assert loop.time() - start < 1.0
        assert client.protocol_version == (4, 0)
        assert client.protocol_flags == frozenset()
    finally:
        client.close()
        await client.wait_closed()


@pytest.mark.parametrize(
    ("version", "text"),
    [
        (b"6.0-MI", "Unknown protocol version 6.0"),
        (b"4.9", "Unknown protocol version 4.9"),
        (b"garbage", "Unparsable katcp-protocol 'garbage'"),
    ],
)
async def test_unsupported_version_raises_protocol_error(
    peers: PeerServer, version: bytes, text: str
) -> None:
    connect = asyncio.create_task(Client.connect("127.0.0.1", peers.port))
    peer = await peers.accept(greeting=b"#version-connect katcp-protocol " + version)
    with pytest.raises(ProtocolError) as exc_info:
        await connect
    assert str(exc_info.value) == text
    assert exc_info.value.version == version.decode()
    await peer.expect_eof()


async def test_unsupported_version_without_reconnect(peers: PeerServer) -> None:
    client = Client("127.0.0.1", peers.port, auto_reconnect=False)
    failures: List[Exception] = []
    client.add_failed_connect_callback(failures.append)
    peer = await peers.accept(greeting=b"#version-connect katcp-protocol 6.0")
    with pytest.raises(ProtocolError):
        await client.wait_connected()
    await peer.expect_eof()
    assert len(failures) == 1 and isinstance(failures[0], ProtocolError)
    await client.wait_closed()
    with pytest.raises(ProtocolError):
        await client.wait_connected()


async def test_other_version_connect_roles_ignored(peers: PeerServer, client: Client) -> None:
    peer = await connected(peers, client)
    await peer.send(
        b"#version-connect katcp-library aiokatcp-2.3 aiokatcp-2.3.0",
        b"#version-connect katcp-device demo-1.0 demo-1.0.3",
        b"#version-connect katcp-protocol 5.0",  # contradicts: ignored with a warning
    )
    task = asyncio.create_task(client.request("x"))
    await peer.expect(b"?x[1]")
    await peer.send(b"!x[1] ok")
    await task
    assert client.protocol_flags == frozenset("MIB")


# -- requests ------------------------------------------------------------------------------------


async def test_concurrent_requests_matched_by_id(peers: PeerServer, client: Client) -> None:
    peer = await connected(peers, client)
    tasks = [asyncio.create_task(client.request("echo", i)) for i in range(1, 51)]
    lines = await peer.readlines(50)
    assert sorted(lines) == sorted(b"?echo[%d] %d" % (i, i) for i in range(1, 51))
    # Reply in reverse order, with informs interleaved with an asynchronous inform.
    for i in reversed(range(1, 51)):
        await peer.send(b"#echo[%d] inform-%d" % (i, i), b"#async-thing 1")
        await peer.send(b"!echo[%d] ok %d" % (i, i))
    for i, task in enumerate(tasks, start=1):
        reply, informs = await task
        assert reply == [b"%d" % i]
        assert [inform.arguments for inform in informs] == [[b"inform-%d" % i]]


@pytest.mark.parametrize(
    ("line", "exc_type", "text"),
    [
        (b"fail it\\_broke", FailReply, "it broke"),
        (b"invalid bad\\_args", InvalidReply, "bad args"),
        # As in 2.3: only the reply's second argument is the message.
        (b"fail it\\_broke and\\_more", FailReply, "it broke"),
        (b"partial half\\_done", InvalidReply, "half done"),
        (b"", InvalidReply, ""),
    ],
)
async def test_reply_codes(
    peers: PeerServer, client: Client, line: bytes, exc_type: type, text: str
) -> None:
    peer = await connected(peers, client)
    task = asyncio.create_task(client.request("x"))
    await peer.expect(b"?x[1]")
    await peer.send(b"!x[1] " + line)
    with pytest.raises(exc_type) as exc_info:
        await task
    assert str(exc_info.value) == text


async def test_request_raw_returns_any_reply(peers: PeerServer, client: Client) -> None:
    peer = await connected(peers, client)
    task = asyncio.create_task(client.request_raw("y", b"a b", 2.5))
    await peer.expect(b"?y[1] a\\_b 2.5")
    await peer.send(b"#y[1] info", b"!y[1] fail nope")
    reply, informs = await task
    assert reply == Message.reply("y", b"fail", b"nope", mid=1)
    assert informs == [Message.inform("y", b"info", mid=1)]


async def test_request_timeout_and_late_reply(peers: PeerServer, client: Client) -> None:
    peer = await connected(peers, client)
    loop = asyncio.get_running_loop()
    start = loop.time()
    task = asyncio.create_task(client.request("slow", timeout=2.5))
    await peer.expect(b"?slow[1]")
    with pytest.raises(asyncio.TimeoutError, match="slow"):
        await task
    assert loop.time() - start == pytest.approx(2.5)
    # The late reply is dropped; the connection stays usable.
    await peer.send(b"#slow[1] late", b"!slow[1] ok late")
    task = asyncio.create_task(client.request("fast"))
    await peer.expect(b"?fast[2]")
    await peer.send(b"!fast[2] ok")
    assert await task == ([], [])
    assert client.is_connected


async def test_timeout_without_ids_keeps_replies_in_order(
    peers: PeerServer, client: Client
) -> None:
    peer = await connected(peers, client, V5_NO_IDS)
    task = asyncio.create_task(client.request("get", timeout=1.0))
    await peer.expect(b"?get")
    with pytest.raises(asyncio.TimeoutError):
        await task
    # A new request of the same name; the late reply to the first must not be taken for it.
    task = asyncio.create_task(client.request("get", timeout=10.0))
    await peer.expect(b"?get")
    await peer.send(b"#get old", b"!get ok old")
    await asyncio.sleep(0.1)
    assert not task.done()
    await peer.send(b"#get new", b"!get ok new")
    reply, informs = await task
    assert reply == [b"new"]
    assert [i.arguments for i in informs] == [[b"new"]]


async def test_cancelled_request_frees_its_id(peers: PeerServer, client: Client) -> None:
    peer = await connected(peers, client)
    task = asyncio.create_task(client.request("a"))
    await peer.expect(b"?a[1]")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(client._tracker) == 0


async def test_not_connected(peers: PeerServer) -> None:
    client = Client("127.0.0.1", peers.port)
    try:
        with pytest.raises(BrokenPipeError, match="Not connected"):
            await client.request("x")
    finally:
        client.close()
        await client.wait_closed()
    with pytest.raises(BrokenPipeError):
        await client.request("x")


async def test_pending_requests_fail_on_disconnect(peers: PeerServer, client: Client) -> None:
    peer = await connected(peers, client)
    tasks = [asyncio.create_task(client.request("x", i)) for i in range(3)]
    await peer.readlines(3)
    await peer.close()
    for task in tasks:
        with pytest.raises(ConnectionResetError):
            await task
    await client.wait_disconnected()
    assert not client.is_connected
    assert isinstance(client.last_exc, ConnectionResetError)


async def test_bad_request_arguments(peers: PeerServer, client: Client) -> None:
    await connected(peers, client)
    with pytest.raises(ValueError, match=r"^name bad name is invalid$"):
        await client.request("bad name")
    with pytest.raises(TypeError):
        await client.request("x", object())
    assert len(client._tracker) == 0


async def test_timeout_hints(peers: PeerServer) -> None:
    client = Client("127.0.0.1", peers.port)
    try:
        peer = await peers.accept(b"#version-connect katcp-protocol 5.1-MIT")
        await peer.expect(b"?request-timeout-hint[1]")
        await peer.send(
            b"#request-timeout-hint[1] slow 30.0",
            b"#request-timeout-hint[1] none 0",
            b"!request-timeout-hint[1] ok 2",
        )
        await client.wait_connected()
        loop = asyncio.get_running_loop()
        start = loop.time()
        task = asyncio.create_task(client.request("slow"))
        await peer.expect(b"?slow[2]")
        with pytest.raises(asyncio.TimeoutError):
            await task
        assert loop.time() - start == pytest.approx(30.0)
        # An explicit timeout wins over the hint.
        with pytest.raises(asyncio.TimeoutError):
            await client.request("slow", timeout=1.0)
        await peer.expect(b"?slow[3]")
    finally:
        client.close()
        await client.wait_closed()


async def test_timeout_hints_failure_is_not_fatal(peers: PeerServer) -> None:
    client = Client("127.0.0.1", peers.port)
    try:
        peer = await peers.accept(b"#version-connect katcp-protocol 5.1-MIT")
        await peer.expect(b"?request-timeout-hint[1]")
        await peer.send(b"!request-timeout-hint[1] invalid unknown\\_request")
        await client.wait_connected()
    finally:
        client.close()
        await client.wait_closed()


# -- informs -------------------------------------------------------------------------------------


class InformClient(Client):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.got: List[object] = []
        self.unhandled: List[Message] = []

    def inform_my_inform(self, x: int, y: str = "default") -> None:
        self.got.append((x, y))

    async def inform_async_thing(self, value: float) -> None:
        await asyncio.sleep(1)
        self.got.append(value)

    def inform_broken(self) -> None:
        raise RuntimeError("handler bug")

    def unhandled_inform(self, msg: Message) -> None:
        self.unhandled.append(msg)


async def test_inform_handlers_and_callbacks(
    peers: PeerServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = InformClient("127.0.0.1", peers.port)
    try:
        peer = await connected(peers, client)
        calls: List[object] = []

        def callback(x: int, y: bytes = b"") -> None:
            calls.append(("cb", x, y))

        def bad_callback(*args: bytes) -> None:
            raise RuntimeError("callback bug")

        client.add_inform_callback("my-inform", bad_callback)
        client.add_inform_callback("my-inform", callback)
        client.add_inform_callback("other", callback)
        with caplog.at_level(logging.WARNING, "aiokatcp"):
            await peer.send(
                b"#my-inform 1",
                b"#my-inform 2 two",
                b"#my-inform notanint",
                b"#other 5 five",
                b"#async-thing 2.5",
                b"#broken",
                b"#nobody-cares 1",
            )
            await asyncio.sleep(2)
        assert client.got == [(1, "default"), (2, "two"), 2.5]
        assert calls == [("cb", 1, b""), ("cb", 2, b"two"), ("cb", 5, b"five")]
        assert [msg.name for msg in client.unhandled] == ["other", "nobody-cares"]
        assert "handler bug" in caplog.text
        assert "callback bug" in caplog.text
        assert "notanint" in caplog.text
        client.remove_inform_callback("my-inform", callback)
        client.remove_inform_callback("my-inform", bad_callback)
        with pytest.raises(ValueError):
            client.remove_inform_callback("my-inform", callback)
        await peer.send(b"#my-inform 3")
        await asyncio.sleep(0.1)
        assert len(calls) == 3
        assert client.got[-1] == (3, "default")
    finally:
        client.close()
        await client.wait_closed()


async def test_log_informs_go_to_python_logging(
    peers: PeerServer, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    peer = await connected(peers, client)
    with caplog.at_level(1, "aiokatcp.client.remote"):
        await peer.send(
            b"#log warn 1700000000.5 device.temp Too\\_hot",
            b"#log trace 1700000000.5 device chatty",
            b"#log weird 1700000000.5 device unknown\\_level",
        )
        await asyncio.sleep(0.1)
    records = [r for r in caplog.records if r.name == "aiokatcp.client.remote"]
    assert [r.levelno for r in records] == [logging.WARNING, 5, logging.WARNING]
    assert "device.temp: Too hot" in records[0].getMessage()
    assert records[0].katcp_logger == "device.temp"  # type: ignore[attr-defined]


async def test_requests_from_server_ignored(peers: PeerServer, client: Client) -> None:
    peer = await connected(peers, client)
    await peer.send(b"?watchdog", b"!stray ok")
    task = asyncio.create_task(client.request("x"))
    await peer.expect(b"?x[1]")
    await peer.send(b"!x[1] ok")
    await task


# -- callbacks and life cycle --------------------------------------------------------------------


async def test_callbacks_in_order_and_isolated(
    peers: PeerServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client("127.0.0.1", peers.port)
    events: List[str] = []

    def bad() -> None:
        events.append("bad")
        raise RuntimeError("oops")

    client.add_connected_callback(lambda: events.append("c1"))
    client.add_connected_callback(bad)
    client.add_connected_callback(lambda: events.append("c2"))
    client.add_disconnected_callback(lambda: events.append("d1"))
    client.add_disconnected_callback(lambda: events.append("d2"))
    try:
        peer = await connected(peers, client)
        assert events == ["c1", "bad", "c2"]
        await peer.close()
        await client.wait_disconnected()
        assert events == ["c1", "bad", "c2", "d1", "d2"]
        assert "oops" in caplog.text
        client.remove_connected_callback(bad)
        await connected(peers, client)
        assert events[-2:] == ["c1", "c2"]
        with pytest.raises(ValueError):
            client.remove_connected_callback(bad)
    finally:
        client.close()
        await client.wait_closed()
    assert events[-2:] == ["d1", "d2"]


async def test_disconnect_inform_closes_and_reconnects(peers: PeerServer, client: Client) -> None:
    peer = await connected(peers, client)
    await peer.send(b"#disconnect new\\_client\\_connected")
    await peer.expect_eof()
    await client.wait_disconnected()
    assert "new client connected" in str(client.last_exc)
    await connected(peers, client)


async def test_close_and_wait_connected(peers: PeerServer, client: Client) -> None:
    peer = await connected(peers, client)
    client.close()
    assert not client.is_connected
    await client.wait_closed()
    await peer.expect_eof()
    assert isinstance(client.last_exc, ConnectionAbortedError)
    with pytest.raises(ConnectionAbortedError):
        await client.wait_connected()
    await client.wait_disconnected()
    client.close()  # idempotent


async def test_wait_connected_raises_when_closed_while_waiting(peers: PeerServer) -> None:
    client = Client("127.0.0.1", peers.port)
    waiter = asyncio.create_task(client.wait_connected())
    await asyncio.sleep(0.1)
    client.close()
    with pytest.raises(ConnectionAbortedError):
        await waiter
    await client.wait_closed()


async def test_connect_classmethod_and_context_manager(peers: PeerServer) -> None:
    connect = asyncio.create_task(Client.connect("127.0.0.1", peers.port))
    peer = await peers.accept()
    async with await connect as client:
        assert client.is_connected
    await peer.expect_eof()
    assert not client.is_connected


async def test_connect_refused_without_reconnect(peers: PeerServer) -> None:
    await peers.stop()
    with pytest.raises(ConnectionRefusedError):
        await Client.connect("127.0.0.1", peers.port, auto_reconnect=False)


async def test_no_reconnect_after_loss(peers: PeerServer) -> None:
    client = Client("127.0.0.1", peers.port, auto_reconnect=False)
    peer = await connected(peers, client)
    await peer.close()
    await client.wait_closed()
    with pytest.raises(ConnectionResetError):
        await client.wait_connected()


def test_construct_before_loop_runs() -> None:
    import async_solipsism

    loop = async_solipsism.EventLoop()
    client = Client("127.0.0.1", 7147)  # no loop is running

    async def main() -> None:
        server = PeerServer()
        await server.start(7147)
        try:
            waiter = asyncio.create_task(client.wait_connected())  # starts the client
            peer = await server.accept()
            await waiter
            task = asyncio.create_task(client.request("x"))
            await peer.expect(b"?x[1]")
            await peer.send(b"!x[1] ok")
            await task
        finally:
            client.close()
            await client.wait_closed()
            await server.close()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_construct_with_loop_not_running() -> None:
    import async_solipsism

    loop = async_solipsism.EventLoop()
    client = Client("127.0.0.1", 7147, loop=loop)

    async def main() -> None:
        server = PeerServer()
        await server.start(7147)
        try:
            await server.accept()
            # Nobody awaited the client: it started by itself once the loop ran.
            await asyncio.sleep(1)
            assert client.is_connected
        finally:
            client.close()
            await client.wait_closed()
            await server.close()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_close_never_started() -> None:
    client = Client("127.0.0.1", 7147)
    client.close()
    assert not client.is_connected


# -- reconnection and keepalive ------------------------------------------------------------------


async def test_reconnect_backoff_on_virtual_clock(
    peers: PeerServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await peers.stop()  # nothing listens: every attempt is refused
    loop = asyncio.get_running_loop()
    # No jitter, so the timing below is exact (the longest possible waits).
    monkeypatch.setattr(
        "aiokatcp.client.backoff_delays", functools.partial(backoff_delays, rand=lambda: 0.0)
    )
    bounds = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    attempts: List[float] = []
    client = Client("127.0.0.1", peers.port)
    client.add_failed_connect_callback(lambda exc: attempts.append(loop.time()))
    try:
        start = loop.time()
        while len(attempts) < 10:
            await asyncio.sleep(1)
        gaps = [b - a for a, b in zip(attempts, attempts[1:])]
        assert gaps == pytest.approx(bounds[:9])
        assert attempts[0] - start == pytest.approx(0.0)
        assert isinstance(client.last_exc, ConnectionRefusedError)
        # Once a connection succeeds, the back-off starts again from the beginning.
        await peers.start(peers.port)
        peers.timeout = 120.0  # the next attempt may be a full 60 s back-off away
        peer = await connected(peers, client)
        await peer.close()
        await client.wait_disconnected()
        lost_at = loop.time()
        await connected(peers, client)
        assert loop.time() - lost_at == pytest.approx(1.0)
    finally:
        client.close()
        await client.wait_closed()


async def test_random_backoff_within_bounds(peers: PeerServer) -> None:
    await peers.stop()
    loop = asyncio.get_running_loop()
    attempts: List[float] = []
    client = Client("127.0.0.1", peers.port)
    client.add_failed_connect_callback(lambda exc: attempts.append(loop.time()))
    try:
        while len(attempts) < 12:
            await asyncio.sleep(1)
    finally:
        client.close()
        await client.wait_closed()
    backoff = 0.5
    for a, b in zip(attempts, attempts[1:]):
        backoff = min(backoff * 2, 60.0)
        # Attempts are observed with 1 s granularity only through the sleep loop,
        # but the callback times themselves are exact.
        assert backoff / 2 - 1e-6 <= b - a <= backoff + 1e-6


@pytest.mark.filterwarnings("ignore:Ignoring socket option:async_solipsism.SolipsismWarning")
async def test_keepalive_drops_dead_connection(peers: PeerServer) -> None:
    client = Client("127.0.0.1", peers.port, keepalive=10.0)
    try:
        loop = asyncio.get_running_loop()
        peer = await connected(peers, client)
        start = loop.time()
        # A chatty server is not pinged.
        for _ in range(3):
            await asyncio.sleep(6)
            await peer.send(b"#tick")
        # Checks at 10 and 20 s saw traffic; the one at 30 s did not.
        await peer.expect(b"?watchdog[1]")
        assert loop.time() - start == pytest.approx(30.0)
        await peer.send(b"!watchdog[1] ok")
        await peer.expect(b"?watchdog[2]")
        assert loop.time() - start == pytest.approx(40.0)
        # No reply: the connection is dropped after another interval, then re-made.
        await peer.expect_eof()
        assert "watchdog" in str(client.last_exc)
        assert loop.time() - start == pytest.approx(50.0)
        await connected(peers, client)
    finally:
        client.close()
        await client.wait_closed()


def test_keepalive_must_be_positive() -> None:
    with pytest.raises(ValueError, match="keepalive"):
        Client("127.0.0.1", 7147, keepalive=0)


async def test_timeout_hints_not_answered(peers: PeerServer) -> None:
    client = Client("127.0.0.1", peers.port, negotiation_timeout=2.0)
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        peer = await peers.accept(b"#version-connect katcp-protocol 5.1-MIT")
        await peer.expect(b"?request-timeout-hint[1]")
        await client.wait_connected()  # after giving up on the hints
        assert loop.time() - start == pytest.approx(2.0)
        assert client._timeout_hints == {}
    finally:
        client.close()
        await client.wait_closed()


async def test_connection_lost_while_fetching_hints(peers: PeerServer) -> None:
    client = Client("127.0.0.1", peers.port, auto_reconnect=False)
    failures: List[Exception] = []
    client.add_failed_connect_callback(failures.append)
    peer = await peers.accept(b"#version-connect katcp-protocol 5.1-MIT")
    await peer.expect(b"?request-timeout-hint[1]")
    await peer.close()
    with pytest.raises(ConnectionResetError):
        await client.wait_connected()
    assert len(failures) == 1 and isinstance(failures[0], ConnectionResetError)
    await client.wait_closed()


async def test_late_unsupported_version_drops_connection(peers: PeerServer) -> None:
    client = Client("127.0.0.1", peers.port, negotiation_timeout=1.0)
    try:
        peer = await peers.accept(greeting=None)
        await client.wait_connected()
        await peer.send(b"#version-connect katcp-protocol 6.0")
        await peer.expect_eof()
        await client.wait_disconnected()
        assert isinstance(client.last_exc, ProtocolError)
    finally:
        client.close()
        await client.wait_closed()


def test_gc_of_running_client_warns() -> None:
    import gc

    import async_solipsism

    loop = async_solipsism.EventLoop()

    async def make() -> None:
        Client("127.0.0.1", 7147)  # started, never closed

    loop.run_until_complete(make())
    with pytest.warns(ResourceWarning, match="unclosed Client"):
        loop.close()  # drops the life-cycle task, and with it the last reference
        gc.collect()


# -- against the real server ---------------------------------------------------------------------


class SleepServer(DeviceServer):
    VERSION = "sleep-1.0"
    BUILD_STATE = "sleep-1.0.0"

    async def request_sleep(self, ctx: RequestContext, seconds: float, tag: str) -> str:
        """Sleep, then return the tag."""
        ctx.inform("sleeping", seconds)
        await asyncio.sleep(seconds)
        return tag


async def test_concurrent_requests_against_real_server() -> None:
    async with running(SleepServer("127.0.0.1", 0)) as server, client_for(server) as client:
        assert "I" in client.protocol_flags
        results = await asyncio.gather(
            *(client.request("sleep", seconds, f"t{seconds}") for seconds in (3, 1, 2))
        )
        # Each request got its own reply and inform.
        for (reply, informs), seconds in zip(results, (3, 1, 2)):
            assert reply == [f"t{seconds}".encode()]
            assert [i.arguments for i in informs] == [[b"sleeping", b"%.1f" % seconds]]


@pytest.mark.filterwarnings("ignore:Ignoring socket option:async_solipsism.SolipsismWarning")
async def test_keepalive_waits_for_outstanding_request(peers: PeerServer) -> None:
    """A long request is not mistaken for a dead peer (the server may answer in order)."""
    client = Client("127.0.0.1", peers.port, keepalive=10.0)
    try:
        loop = asyncio.get_running_loop()
        peer = await connected(peers, client)
        start = loop.time()
        task = asyncio.ensure_future(client.request("slow"))
        await peer.expect(b"?slow[1]")
        await asyncio.sleep(45)  # silence for several intervals, but a request is pending
        assert client.is_connected
        await peer.send(b"!slow[1] ok")
        assert await task == ([], [])
        # With nothing outstanding, the silent server is pinged again: the check at 50 s
        # saw the reply arrive, the one at 60 s saw silence.
        await peer.expect(b"?watchdog[2]")
        assert loop.time() - start == pytest.approx(60.0)
        await peer.send(b"!watchdog[2] ok")
    finally:
        client.close()
        await client.wait_closed()


@pytest.mark.real_loop
async def test_keepalive_sets_tcp_keepalive() -> None:
    import socket

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"#version-connect katcp-protocol 5.1-MI\n")
        await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await asyncio.wait_for(Client.connect("127.0.0.1", port, keepalive=5.0), 30)
    try:
        assert client._conn is not None
        sock = client._conn.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 5
    finally:
        client.close()
        await client.wait_closed()
        server.close()
        await server.wait_closed()
