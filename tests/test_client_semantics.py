"""Client behaviour that 2.x code depends on (api-contract §10.3, §10.4) and the agreed APIs.

Scripted peers on the virtual clock: the tests see the exact bytes the client sends.
"""

from __future__ import annotations

import asyncio
import logging
from typing import List

import pytest

from aiokatcp import Client, Message, SensorWatcher
from aiokatcp._backoff import backoff_delays
from aiokatcp._client_state import TRANSITIONS, Event, LifecycleError, State, next_state
from helpers import PeerServer, connected


class MyClient(Client):
    pass


async def test_connect_is_an_async_context_manager(peers: PeerServer) -> None:
    attempt = MyClient.connect("127.0.0.1", peers.port)
    peer_task = asyncio.create_task(peers.accept())
    async with attempt as client:
        assert type(client) is MyClient
        assert client.is_connected
        await peer_task
    with pytest.raises(ConnectionAbortedError):  # closed by the block
        await client.wait_connected()


async def test_connect_still_awaitable_and_a_coroutine(peers: PeerServer) -> None:
    # 2.x code awaits it, wraps it in a task, or enters the awaited client.
    task = asyncio.create_task(MyClient.connect("127.0.0.1", peers.port))
    await peers.accept()
    client = await task
    assert type(client) is MyClient
    async with client:
        assert client.is_connected
    accept = asyncio.create_task(peers.accept())
    async with await Client.connect("127.0.0.1", peers.port) as client2:
        assert client2.is_connected
    await accept


async def test_message_ids_keep_counting_across_reconnects(
    peers: PeerServer, client: Client
) -> None:
    peer = await connected(peers, client)
    task = asyncio.create_task(client.request("a"))
    await peer.expect(b"?a[1]")
    await peer.send(b"!a[1] ok")
    await task
    await peer.close()
    await client.wait_disconnected()
    peer = await connected(peers, client)
    task = asyncio.create_task(client.request("b"))
    await peer.expect(b"?b[2]")
    await peer.send(b"!b[2] ok")
    await task


async def test_sensor_value_without_type_lists_first(peers: PeerServer, client: Client) -> None:
    peer = await connected(peers, client)
    task = asyncio.create_task(client.sensor_value("s"))
    await peer.expect(b"?sensor-list[1] s", b"?sensor-value[2] s")
    await peer.send(
        b"#sensor-list[1] s d u integer",
        b"!sensor-list[1] ok 1",
        b"#sensor-value[2] 1.0 1 s nominal 3",
        b"!sensor-value[2] ok 1",
    )
    assert await task == 3
    task2 = asyncio.create_task(client.sensor_value("s", float))
    await peer.expect(b"?sensor-value[3] s")  # with a type: no ?sensor-list
    await peer.send(b"#sensor-value[3] 1.0 1 s nominal 3", b"!sensor-value[3] ok 1")
    assert await task2 == 3.0


async def test_failed_connect_is_a_warning_on_the_client_logger(
    peers: PeerServer, caplog: pytest.LogCaptureFixture
) -> None:
    await peers.stop()
    client = Client("127.0.0.1", peers.port, auto_reconnect=False)
    with caplog.at_level(logging.WARNING):
        with pytest.raises(ConnectionRefusedError):
            await client.wait_connected()
    await client.wait_closed()
    records = [r for r in caplog.records if "Failed to connect" in r.getMessage()]
    assert len(records) == 1
    assert records[0].name == "aiokatcp.client"
    assert records[0].levelno == logging.WARNING
    assert records[0].getMessage().startswith(f"Failed to connect to 127.0.0.1:{peers.port}: ")
    assert records[0].getMessage().endswith(f" [127.0.0.1:{peers.port}]")


async def test_every_failed_attempt_warns_and_backoff_is_configurable(
    peers: PeerServer, caplog: pytest.LogCaptureFixture
) -> None:
    await peers.stop()
    loop = asyncio.get_running_loop()
    attempts: List[float] = []
    client = Client("127.0.0.1", peers.port, backoff=(0.1, 0.2))
    client.add_failed_connect_callback(lambda exc: attempts.append(loop.time()))
    with caplog.at_level(logging.WARNING):
        while len(attempts) < 5:
            await asyncio.sleep(0.05)
    client.close()
    await client.wait_closed()
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert 0.05 - 1e-9 <= gaps[0] <= 0.1 + 1e-9
    assert all(0.1 - 1e-9 <= gap <= 0.2 + 1e-9 for gap in gaps[1:])
    assert sum("Failed to connect" in r.getMessage() for r in caplog.records) >= 5


async def test_watcher_logs_through_the_client_logger(client: Client) -> None:
    assert SensorWatcher(client).logger is client.logger
    assert client.logger.logger.name == "aiokatcp.client"


def test_bad_backoff_bounds() -> None:
    with pytest.raises(ValueError):
        Client("127.0.0.1", 1, backoff=(2.0, 1.0))


# -- inform_callback, send_message, reply_<name>, unhandled_* --------------------------------------


async def test_inform_callback_sees_informs_before_the_reply(
    peers: PeerServer, client: Client
) -> None:
    peer = await connected(peers, client)
    seen: List[Message] = []
    first = asyncio.Event()

    def callback(msg: Message) -> None:
        seen.append(msg)
        first.set()

    task = asyncio.create_task(client.request("list", inform_callback=callback))
    await peer.expect(b"?list[1]")
    await peer.send(b"#list[1] one")
    await first.wait()
    assert not task.done()
    await peer.send(b"#list[1] two", b"!list[1] ok 2")
    _, informs = await task
    assert [m.arguments for m in seen] == [[b"one"], [b"two"]]
    assert informs == seen  # still returned
    raw = asyncio.create_task(client.request_raw("x", inform_callback=seen.append))
    await peer.expect(b"?x[2]")
    await peer.send(b"#x[2] three", b"!x[2] fail no")
    reply_msg, _ = await raw
    assert seen[-1].arguments == [b"three"]
    assert reply_msg.arguments == [b"fail", b"no"]


async def test_inform_callback_exception_is_logged(
    peers: PeerServer, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    peer = await connected(peers, client)

    def callback(msg: Message) -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(client.request("x", inform_callback=callback))
    await peer.expect(b"?x[1]")
    await peer.send(b"#x[1] a", b"!x[1] ok")
    assert await task == ([], [Message.inform("x", b"a", mid=1)])
    assert "Exception in inform callback" in caplog.text


class ReplyClient(Client):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.replies: List[Message] = []
        self.unhandled: List[Message] = []
        self.unhandled_informs: List[Message] = []
        self.got = asyncio.Event()

    def reply_my_req(self, msg: Message) -> None:
        self.replies.append(msg)
        self.got.set()

    def unhandled_reply(self, msg: Message) -> None:
        self.unhandled.append(msg)
        self.got.set()

    def unhandled_inform(self, msg: Message) -> None:
        self.unhandled_informs.append(msg)


async def test_send_message_and_reply_handlers(peers: PeerServer) -> None:
    client = ReplyClient("127.0.0.1", peers.port)
    try:
        peer = await connected(peers, client)
        client.send_message(Message.request("my-req", "x", mid=7))
        await peer.expect(b"?my-req[7] x")
        await peer.send(b"#my-req[7] partial", b"!my-req[7] ok")
        await client.got.wait()
        assert [m.arguments for m in client.replies] == [[b"ok"]]
        assert [m.arguments for m in client.unhandled_informs] == [[b"partial"]]
        client.got.clear()
        client.send_message(Message.request("other"))
        await peer.expect(b"?other")
        await peer.send(b"!other ok")
        await client.got.wait()
        assert [m.name for m in client.unhandled] == ["other"]
        await peer.send(b"#async-thing 1")
        await peer.send(b"!other ok")  # a marker: informs are handled in order
        client.got.clear()
        await client.got.wait()
        assert client.unhandled_informs[-1].name == "async-thing"
    finally:
        client.close()
        await client.wait_closed()
    with pytest.raises(BrokenPipeError):
        client.send_message(Message.request("x"))


# -- the pure modules ------------------------------------------------------------------------------


def test_backoff_delays() -> None:
    delays = backoff_delays(1.0, 10.0, rand=lambda: 0.0)
    assert [next(delays) for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    low = backoff_delays(1.0, 10.0, jitter=0.5, rand=lambda: 1.0)
    assert [next(low) for _ in range(3)] == [0.5, 1.0, 2.0]
    fixed = backoff_delays(2.0, 2.0, factor=1.0, jitter=0.0)
    assert [next(fixed) for _ in range(3)] == [2.0, 2.0, 2.0]
    for kwargs in ({"initial": -1.0}, {"maximum": 0.5}, {"factor": 0.5}, {"jitter": 2.0}):
        with pytest.raises(ValueError):
            next(backoff_delays(**kwargs))  # type: ignore[arg-type]


def test_state_table_refuses_illegal_events() -> None:
    assert next_state(State.CONNECTING, Event.TCP_UP) is State.NEGOTIATING
    assert next_state(State.NEGOTIATING, Event.NEGOTIATED) is State.CONNECTED
    with pytest.raises(LifecycleError, match="NEGOTIATED is not allowed in state CONNECTING"):
        next_state(State.CONNECTING, Event.NEGOTIATED)
    for event in Event:
        with pytest.raises(LifecycleError):
            next_state(State.CLOSED, event)
    # Every state but CLOSED can finish; every state is in the table.
    assert set(TRANSITIONS) == set(State)
    assert all(
        Event.FINISH in row for state, row in TRANSITIONS.items() if state is not State.CLOSED
    )
