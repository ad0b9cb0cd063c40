"""BlockingClient, and the server's thread-safe entry points, used from real threads.

Synchronous tests: the device runs on a LoopThread (a real loop and real
127.0.0.1 sockets, not async-solipsism). Threads are synchronised with
events and barriers; every wait is bounded so that a failure cannot hang.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable, Iterator, List, Tuple

import pytest

import aiokatcp
from aiokatcp import BlockingClient, FailReply, InvalidReply, LoopThread, Message

WAIT = 10.0  # upper bound on any wait; reached only if the code under test is broken


class Device(aiokatcp.DeviceServer):
    VERSION = "test-api-1.0"
    BUILD_STATE = "test-1.0"

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.counter = aiokatcp.Sensor(int, "counter", "a counter", default=0)
        self.sensors.add(self.counter)
        self.release = asyncio.Event()

    async def request_echo(self, ctx: aiokatcp.RequestContext, *args: str) -> Tuple[str, ...]:
        """Reply with the arguments."""
        return tuple(args)

    async def request_fail(self, ctx: aiokatcp.RequestContext) -> None:
        """Always fail."""
        raise FailReply("as requested")

    async def request_informs_then_wait(self, ctx: aiokatcp.RequestContext, n: int) -> int:
        """Send `n` informs, then reply once released by the test."""
        for i in range(n):
            ctx.inform(i)
        await self.release.wait()
        return n

    async def request_timer_reply(self, ctx: aiokatcp.RequestContext, fruit: str) -> None:
        """Inform and reply from a threading.Timer (the seed's ?pick-fruit)."""
        loop = asyncio.get_running_loop()
        answered = loop.create_future()

        def pick() -> None:
            assert threading.current_thread() is not threading.main_thread()
            ctx.inform("picking")
            ctx.reply("ok", fruit)
            loop.call_soon_threadsafe(answered.set_result, None)

        threading.Timer(0.01, pick).start()
        await answered


class Running:
    """A Device on its own LoopThread; restartable on the same port."""

    def __init__(self) -> None:
        self.lt = LoopThread(name="test-device").start()
        self.port = 0
        self.server = self.start()

    def start(self) -> Device:
        async def start() -> Device:
            server = Device("127.0.0.1", self.port)
            await server.start()
            return server

        self.server = self.lt.run(start(), timeout=WAIT)
        self.port = self.server.port
        return self.server

    def stop(self) -> None:
        self.lt.run(self.server.stop(), timeout=WAIT)

    def close(self) -> None:
        self.stop()
        self.lt.close()


@pytest.fixture
def device() -> Iterator[Running]:
    running = Running()
    yield running
    running.close()


@pytest.fixture
def client(device: Running) -> Iterator[BlockingClient]:
    with BlockingClient("127.0.0.1", device.port) as client:
        client.wait_connected(WAIT)
        yield client


class Silent:
    """A fake device that negotiates, counts the requests it gets and never replies."""

    def __init__(self, expect: int) -> None:
        self.expect = expect
        self.received: List[bytes] = []
        self.writers: List[asyncio.StreamWriter] = []
        self.all_received = threading.Event()
        self.lt = LoopThread(name="test-silent").start()

        async def start() -> asyncio.AbstractServer:
            return await asyncio.start_server(self._handle, "127.0.0.1", 0)

        self.server = self.lt.run(start())
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(b"#version-connect katcp-protocol 5.1-IMB\n")
        while line := await reader.readline():
            self.received.append(line)
            if len(self.received) == self.expect:
                self.all_received.set()
        writer.close()

    def drop_connections(self) -> None:
        for writer in self.lt.call(list, self.writers):
            self.lt.call(writer.close)

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()

        self.lt.run(stop())
        self.lt.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    fake = Silent(expect=8)
    yield fake
    fake.close()


def run_threads(n: int, target: Callable[[int], Any]) -> List[Any]:
    """Run ``target(i)`` in `n` threads; return each result or exception (bounded)."""
    results: List[Any] = [None] * n

    def wrapper(i: int) -> None:
        try:
            results[i] = target(i)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=wrapper, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return results


# -- requests ----------------------------------------------------------------------------------


def test_request(client: BlockingClient) -> None:
    reply, informs = client.request("echo", "a", 3)
    assert reply == [b"a", b"3"]
    assert informs == []
    assert "I" in client.protocol_flags
    reply_msg, _ = client.request_raw("fail")
    assert reply_msg.arguments == [b"fail", b"as requested"]
    with pytest.raises(FailReply, match="as requested"):
        client.request("fail")
    with pytest.raises(InvalidReply):
        client.request("no-such-request")


def test_concurrent_requests_from_8_threads(client: BlockingClient) -> None:
    barrier = threading.Barrier(8, timeout=WAIT)

    def worker(i: int) -> List[List[bytes]]:
        barrier.wait()
        return [client.request("echo", i, j)[0] for j in range(25)]

    results = run_threads(8, worker)
    for i, replies in enumerate(results):
        assert replies == [[str(i).encode(), str(j).encode()] for j in range(25)]


def test_future_request(client: BlockingClient) -> None:
    future = client.future_request("echo", "x")
    assert future.result(WAIT) == ([b"x"], [])
    failing = client.future_request("fail")
    assert isinstance(failing.exception(WAIT), FailReply)


def test_callback_request_delivers_informs_before_the_reply(
    device: Running, client: BlockingClient
) -> None:
    events: List[Tuple[str, Message]] = []
    threads: List[threading.Thread] = []
    got_informs = threading.Event()
    got_reply = threading.Event()

    def inform_cb(msg: Message) -> None:
        events.append(("inform", msg))
        threads.append(threading.current_thread())
        if len(events) == 3:
            got_informs.set()

    def reply_cb(msg: Message) -> None:
        events.append(("reply", msg))
        threads.append(threading.current_thread())
        got_reply.set()

    assert (
        client.callback_request("informs-then-wait", 3, reply_cb=reply_cb, inform_cb=inform_cb)
        is None
    )
    # The informs arrive while the server still holds back the reply.
    assert got_informs.wait(WAIT)
    assert not got_reply.is_set()
    device.lt.call(device.server.release.set)
    assert got_reply.wait(WAIT)
    assert [kind for kind, _ in events] == ["inform"] * 3 + ["reply"]
    assert [msg.arguments for _, msg in events] == [[b"0"], [b"1"], [b"2"], [b"ok", b"3"]]
    # Callbacks run on the client's loop thread.
    loop_thread = client.loop_thread.call(threading.current_thread)
    assert all(t is loop_thread for t in threads)


def test_raising_callback_is_logged_and_client_survives(
    device: Running, client: BlockingClient, caplog: pytest.LogCaptureFixture
) -> None:
    device.lt.call(device.server.release.set)
    done = threading.Event()

    def bad(msg: Message) -> None:
        if msg.mtype is Message.Type.REPLY:
            done.set()
        raise RuntimeError("callback bug")

    with caplog.at_level(logging.ERROR, logger="aiokatcp._blocking_client"):
        client.callback_request("informs-then-wait", 2, reply_cb=bad, inform_cb=bad)
        assert done.wait(WAIT)
        assert client.request("echo", "still", "fine")[0] == [b"still", b"fine"]
    logged = [r for r in caplog.records if "callback" in r.getMessage()]
    assert len(logged) == 3
    assert all(r.exc_info and "callback bug" in str(r.exc_info[1]) for r in logged)


def test_blocking_call_from_a_callback_raises_instead_of_deadlocking(
    client: BlockingClient,
) -> None:
    outcome: List[BaseException] = []
    done = threading.Event()

    def reply_cb(msg: Message) -> None:
        try:
            client.request("echo")
        except BaseException as exc:
            outcome.append(exc)
        # Non-blocking calls are fine there.
        client.callback_request("echo", "nested", reply_cb=lambda m: done.set())

    client.callback_request("echo", reply_cb=reply_cb)
    assert done.wait(WAIT)
    assert len(outcome) == 1
    assert isinstance(outcome[0], RuntimeError) and "deadlock" in str(outcome[0])


def test_sensor_value_and_reading(device: Running, client: BlockingClient) -> None:
    device.server.counter.value = 7  # on the test thread: handed to the server's loop
    assert client.sensor_value("counter") == 7
    assert client.sensor_value("counter", int) == 7
    reading = client.sensor_reading("counter")
    assert reading.value == 7
    assert reading.status == aiokatcp.Sensor.Status.NOMINAL
    with pytest.raises(FailReply):
        client.sensor_value("no-such-sensor")


# -- timeouts, connection loss and close ------------------------------------------------------


def test_timeouts(silent: Silent) -> None:
    with BlockingClient("127.0.0.1", silent.port, timeout=0.1) as client:
        client.wait_connected(WAIT)
        with pytest.raises(TimeoutError, match="no reply to \\?nothing"):
            client.request("nothing")
        with pytest.raises(TimeoutError):
            client.request_raw("nothing", timeout=0.05)
        assert isinstance(client.future_request("nothing").exception(WAIT), TimeoutError)
        got = threading.Event()
        replies: List[Message] = []

        def reply_cb(msg: Message) -> None:
            replies.append(msg)
            got.set()

        client.callback_request("nothing", reply_cb=reply_cb)
        assert got.wait(WAIT)
        assert replies[0].arguments[0] == b"fail"
        assert b"no reply" in replies[0].arguments[1]


def test_wait_connected_timeout() -> None:
    with LoopThread() as lt:

        async def free_port() -> int:
            server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
            port: int = server.sockets[0].getsockname()[1]
            server.close()
            await server.wait_closed()
            return port

        port = lt.run(free_port())
    with BlockingClient("127.0.0.1", port) as client:
        with pytest.raises(TimeoutError):
            client.wait_connected(timeout=0.05)
        with pytest.raises(TimeoutError):
            client.request("echo", timeout=0.05)
        assert not client.is_connected


def test_reconnection_while_threads_wait(device: Running) -> None:
    with BlockingClient("127.0.0.1", device.port, timeout=WAIT) as client:
        client.wait_connected(WAIT)
        device.stop()
        client.loop_thread.run(client.client.wait_disconnected(), timeout=WAIT)
        assert not client.is_connected
        barrier = threading.Barrier(9, timeout=WAIT)

        def worker(i: int) -> Any:
            barrier.wait()
            return client.request("echo", i)[0]

        results: List[Any] = []
        runner = threading.Thread(target=lambda: results.extend(run_threads(8, worker)))
        runner.start()
        barrier.wait()  # every thread is about to wait (or already waits) for the connection
        device.start()  # same port
        runner.join(2 * WAIT)
        assert not runner.is_alive()
        assert results == [[str(i).encode()] for i in range(8)]


def test_request_in_flight_when_connection_is_lost(silent: Silent) -> None:
    silent.expect = 1
    with BlockingClient("127.0.0.1", silent.port, timeout=WAIT) as client:
        client.wait_connected(WAIT)
        future = client.future_request("nothing")
        assert silent.all_received.wait(WAIT)
        silent.drop_connections()
        assert isinstance(future.exception(WAIT), ConnectionError)
        client.wait_connected(WAIT)  # and it reconnects


def test_close_with_calls_in_flight(silent: Silent) -> None:
    client = BlockingClient("127.0.0.1", silent.port, timeout=None)
    client.wait_connected(WAIT)

    def worker(i: int) -> Any:
        return client.request("nothing", i)

    results: List[Any] = []
    runner = threading.Thread(target=lambda: results.extend(run_threads(8, worker)))
    runner.start()
    assert silent.all_received.wait(WAIT)  # all 8 requests are on the wire
    client.close()
    runner.join(2 * WAIT)
    assert not runner.is_alive()
    assert len(results) == 8
    for result in results:
        assert isinstance(result, ConnectionAbortedError), result
        assert "closed" in str(result)


def test_methods_after_close_raise(device: Running) -> None:
    client = BlockingClient("127.0.0.1", device.port)
    client.close()
    client.close()  # idempotent
    calls: List[Callable[[], Any]] = [
        lambda: client.request("echo"),
        lambda: client.request_raw("echo"),
        lambda: client.future_request("echo"),
        lambda: client.callback_request("echo"),
        lambda: client.wait_connected(),
        lambda: client.sensor_value("counter"),
        lambda: client.sensor_reading("counter"),
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match="is closed"):
            call()
    assert "closed" in repr(client)


# -- the server side from threads -------------------------------------------------------------


def _watch(client: BlockingClient, name: str) -> Tuple[List[Tuple[bytes, ...]], threading.Event]:
    """Collect asynchronous ``#name`` informs seen by `client` (callback on its loop)."""
    seen: List[Tuple[bytes, ...]] = []
    event = threading.Event()

    def callback(*args: bytes) -> None:
        seen.append(args)
        event.set()

    client.loop_thread.call(client.client.add_inform_callback, name, callback)
    return seen, event


def test_set_value_from_a_thread_reaches_a_subscribed_client(
    device: Running, client: BlockingClient
) -> None:
    seen, event = _watch(client, "sensor-status")
    client.request("sensor-sampling", "counter", "event")
    assert event.wait(WAIT)  # the initial reading
    event.clear()
    setter = threading.Thread(target=device.server.counter.set_value, args=(42,))
    setter.start()
    setter.join(WAIT)
    assert event.wait(WAIT), "update made off the loop thread never reached the client"
    assert seen[-1][2:] == (b"counter", b"nominal", b"42")


def test_ctx_reply_from_a_threading_timer(client: BlockingClient) -> None:
    reply, informs = client.request("timer-reply", "apple")
    assert reply == [b"apple"]
    assert [m.arguments for m in informs] == [[b"picking"]]


def test_mass_inform_from_a_thread(device: Running, client: BlockingClient) -> None:
    seen, event = _watch(client, "hello")
    sender = threading.Thread(target=device.server.mass_inform, args=("hello", "world"))
    sender.start()
    sender.join(WAIT)
    assert event.wait(WAIT)
    assert seen == [(b"world",)]
