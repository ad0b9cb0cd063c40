"""DeviceServer scheduling: ordering, concurrency, back-pressure, slow clients, shutdown."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import socket
from typing import AsyncIterator, List, Tuple

import pytest

from aiokatcp.sensor import Sensor
from aiokatcp.server import ClientConnection, DeviceServer, RequestContext
from aiokatcp.testing import ScriptedPeer, running


class SchedServer(DeviceServer):
    VERSION = "sched-1.0"
    BUILD_STATE = "sched-1.0.0"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.started: List[Tuple[str, int]] = []
        self.running = 0
        self.max_running = 0
        self.cleaned_up = 0

    async def request_sleep(
        self, ctx: RequestContext, delay: float, tag: str = "", i: int = 0
    ) -> str:
        """Sleep for a while."""
        self.started.append((tag, i))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(delay)
        finally:
            self.running -= 1
            self.cleaned_up += 1
        return tag

    def request_echo(self, ctx: RequestContext, *args: bytes) -> Tuple[bytes, ...]:
        """Echo (plain def, runs inline)."""
        return args

    async def request_quick(self, ctx: RequestContext, x: int) -> int:
        """Return at once (an async handler that never waits)."""
        return x

    async def request_early(self, ctx: RequestContext) -> None:
        """Reply at once, then keep working."""
        ctx.reply("ok")
        await asyncio.sleep(10)
        self.cleaned_up += 1

    async def request_timeout(self, ctx: RequestContext, limit: float, delay: float) -> str:
        """Run something under asyncio.timeout (needs a real current task)."""
        assert asyncio.current_task() is not None
        try:
            async with asyncio.timeout(limit):
                await asyncio.sleep(delay)
        except TimeoutError:
            return "timed-out"
        return "in-time"

    async def request_self_cancel(self, ctx: RequestContext) -> None:
        """Cancel the task running this handler."""
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(1)

    async def request_group(self, ctx: RequestContext, n: int) -> int:
        """Use a task group inside a handler."""
        results: List[int] = []

        async def child(i: int) -> None:
            await asyncio.sleep(i)
            results.append(i)

        async with asyncio.TaskGroup() as group:
            for i in range(n):
                group.create_task(child(i))
        return sum(results)


def sched(**kwargs: object) -> SchedServer:
    return SchedServer("127.0.0.1", 0, **kwargs)


async def start(**kwargs: object) -> SchedServer:
    """A started server, for tests that stop it themselves (else use ``running(sched())``)."""
    srv = sched(**kwargs)
    await srv.start()
    return srv


async def connect(server: DeviceServer) -> ScriptedPeer:
    peer = await ScriptedPeer.connect_to(server)
    await peer.expect_connect()
    return peer


@pytest.fixture
async def server() -> AsyncIterator[SchedServer]:
    async with running(sched()) as srv:
        yield srv


async def test_requests_overlap_within_connection(server: SchedServer) -> None:
    """As in aiokatcp 2.x: each request is its own task; replies come as handlers finish."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with await connect(server) as peer:
        await peer.send(b"?sleep[1] 2 a", b"?sleep[2] 1 b", b"?echo[3] c")
        await peer.expect(b"!echo[3] ok c")
        assert loop.time() - t0 == pytest.approx(0)
        await peer.expect(b"!sleep[2] ok b")
        assert loop.time() - t0 == pytest.approx(1)
        await peer.expect(b"!sleep[1] ok a")
        assert loop.time() - t0 == pytest.approx(2)
    assert server.max_running == 2


async def test_quick_handlers_reply_in_arrival_order(server: SchedServer) -> None:
    async with await connect(server) as peer:
        await peer.send(b"?quick[1] 1", b"?sleep[2] 1 s", b"?echo[3] x", b"?quick[4] 4")
        await peer.expect(b"!quick[1] ok 1", b"!echo[3] ok x", b"!quick[4] ok 4")
        await peer.expect(b"!sleep[2] ok s")


async def test_concurrent_across_connections(server: SchedServer) -> None:
    loop = asyncio.get_running_loop()
    async with await connect(server) as a, await connect(server) as b:
        await a.expect(re.compile(rb"#client-connected .*"))
        t0 = loop.time()
        await a.send(b"?sleep 10 a")
        await b.send(b"?sleep 1 b")
        await b.expect(b"!sleep ok b")
        assert loop.time() - t0 == pytest.approx(1)
        await a.expect(b"!sleep ok a")
        assert loop.time() - t0 == pytest.approx(10)


async def test_early_reply_lets_connection_continue(server: SchedServer) -> None:
    loop = asyncio.get_running_loop()
    async with await connect(server) as peer:
        t0 = loop.time()
        await peer.send(b"?early", b"?echo x")
        await peer.expect(b"!early ok", b"!echo ok x")
        assert loop.time() - t0 < 1
    await asyncio.sleep(20)
    assert server.cleaned_up == 1


needs_311 = pytest.mark.skipif(
    not hasattr(asyncio, "timeout"),
    reason="asyncio.timeout, TaskGroup and tasks with a context need Python 3.11",
)


@needs_311
async def test_handlers_run_in_a_task(server: SchedServer) -> None:
    loop = asyncio.get_running_loop()
    async with await connect(server) as peer:
        t0 = loop.time()
        await peer.send(b"?timeout 1 5", b"?timeout 5 2", b"?group 4", b"?echo x")
        await peer.expect(b"!echo ok x", b"!timeout ok timed-out", b"!timeout ok in-time")
        assert loop.time() - t0 == pytest.approx(2)
        await peer.expect(b"!group ok 6")
        # the longest child takes 3 s, and nothing was cancelled by mistake
        assert loop.time() - t0 == pytest.approx(3)


async def test_self_cancel_only_affects_that_request(server: SchedServer) -> None:
    # (On Python < 3.12 the task is cancelled before its own first step: the handler's
    # first step ran inline. It is still answered exactly once.)
    async with await connect(server) as peer:
        await peer.send(b"?self-cancel", b"?sleep 2 after")
        await peer.expect(b"!self-cancel fail request\\_cancelled", b"!sleep ok after")


async def test_stop_cancels_detached_handler() -> None:
    srv = await start()
    async with await connect(srv) as peer:
        assert await peer.request(b"?early") == [b"!early ok"]
        await srv.stop()
        await peer.expect(b"#disconnect server\\_shutting\\_down")
    assert srv.cleaned_up == 0  # cancelled, not finished
    assert asyncio.all_tasks() == {asyncio.current_task()}


@pytest.mark.skipif(
    not hasattr(asyncio, "eager_task_factory"), reason="eager tasks need Python 3.12"
)
async def test_eager_task_factory() -> None:
    loop = asyncio.get_running_loop()
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    try:
        srv = await start(max_pending=2)
        async with await connect(srv) as a, await connect(srv) as b:
            # ?group 0 finishes without suspending: the eager worker is done at once. Then
            # ?sleep and ?early take the two slots (?early replies at once and keeps its
            # slot), ?echo waits for ?sleep's, and b's requests, read later, follow.
            await a.send(b"?group 0", b"?sleep 1 a 2", b"?early", b"?echo a3")
            await b.send(*[b"?sleep 1 b %d" % i for i in range(3)])
            await a.expect(
                re.compile(rb"#client-connected .*"),
                b"!group ok 0",
                b"!early ok",
                b"!sleep ok a",
                b"!echo ok a3",
            )
            await b.expect(b"!sleep ok b", b"!sleep ok b", b"!sleep ok b")
            assert await a.request(b"?watchdog") == [b"!watchdog ok"]
        await srv.stop()
    finally:
        loop.set_task_factory(None)


async def test_max_pending_fifo_over_all_connections() -> None:
    """Requests beyond max_pending wait in one FIFO and start as slots free."""
    loop = asyncio.get_running_loop()
    async with running(sched(max_pending=3)) as srv:
        n_conns, n_reqs = 12, 6
        peers = [await connect(srv) for _ in range(n_conns)]
        t0 = loop.time()
        for c, peer in enumerate(peers):
            await peer.send(*[b"?sleep 1 c%d %d" % (c, i) for i in range(n_reqs)])

        async def collect(c: int, peer: ScriptedPeer) -> List[bytes]:
            lines = []
            while len(lines) < n_reqs:
                line = await peer.readline()
                if line.startswith(b"!"):
                    lines.append(line)
            return lines

        results = await asyncio.gather(*(collect(c, peer) for c, peer in enumerate(peers)))
        for c, lines in enumerate(results):
            assert lines == [b"!sleep ok c%d" % c] * n_reqs
        assert srv.max_running == 3
        assert loop.time() - t0 == pytest.approx(n_conns * n_reqs / 3)
        # First come, first served: in the order they were read, which is the order sent.
        assert srv.started == [(f"c{c}", i) for c in range(n_conns) for i in range(n_reqs)]
        # Nobody was left paused: every connection still answers promptly.
        for c, peer in enumerate(peers):
            assert await peer.request(b"?echo %d" % c) == [b"!echo ok %d" % c]
        for peer in peers:
            await peer.close()


async def test_max_pending_pauses_reading_but_informs_flow() -> None:
    async with running(sched(max_pending=1)) as srv:
        async with await connect(srv) as a, await connect(srv) as b:
            await a.expect(re.compile(rb"#client-connected .*"))
            await a.send(b"?sleep 10 a", b"?echo queued")
            await asyncio.sleep(1)
            assert srv.connections[1].get_extra_info("socket") is not None
            # b's request cannot even be read while a's waits in the FIFO
            await b.send(b"?echo b")
            srv.mass_inform("note", "still-flowing")
            await a.expect(b"#note still-flowing")
            await b.expect(b"#note still-flowing")
            async with await connect(srv) as c:  # a new connection starts paused too
                await a.expect(re.compile(rb"#client-connected .*"))
                await b.expect(re.compile(rb"#client-connected .*"))
                await c.send(b"?echo c")
                await asyncio.sleep(5)
                assert srv.started == [("a", 0)]
                await a.expect(b"!sleep ok a", b"!echo ok queued")
                await b.expect(b"!echo ok b")
                await c.expect(b"!echo ok c")


async def test_max_pending_inline_handlers_never_block() -> None:
    async with running(sched(max_pending=1)) as srv:
        async with await connect(srv) as a, await connect(srv) as b:
            a.send_nowait(*[b"?echo a%d" % i for i in range(300)])
            b.send_nowait(*[b"?echo b%d" % i for i in range(300)])
            got_b = [line for line in await b.readlines(300)]
            assert got_b == [b"!echo ok b%d" % i for i in range(300)]
            lines = [line for line in await a.readlines(301) if line.startswith(b"!")]
            assert lines == [b"!echo ok a%d" % i for i in range(300)]


async def test_long_pipeline_in_order(server: SchedServer) -> None:
    async with await connect(server) as peer:
        await peer.send(*[b"?echo %d" % i for i in range(2000)])
        assert await peer.readlines(2000) == [b"!echo ok %d" % i for i in range(2000)]


async def test_unread_replies_stop_reading(server: SchedServer) -> None:
    """A client that pipelines requests but never reads cannot make the server buffer all."""
    async with await connect(server) as peer:
        peer.pause_reading()
        sender = asyncio.create_task(peer.send(*[b"?help"] * 3000))
        await asyncio.sleep(5)
        (conn,) = server.connections
        assert conn.get_write_buffer_size() < 1_000_000
        assert conn.write_paused
        # Now read everything: all the replies come, in order.
        peer.resume_reading()
        replies = 0
        while replies < 3000:
            line = await peer.readline()
            if line.startswith(b"!help ok"):
                replies += 1
        await sender


async def test_slow_reader_disconnected(caplog: pytest.LogCaptureFixture) -> None:
    async with running(sched(max_backlog=20_000)) as srv:
        slow = await connect(srv)
        fast = await connect(srv)
        await slow.expect(re.compile(rb"#client-connected .*"))
        slow.pause_reading()
        with caplog.at_level(logging.WARNING, "aiokatcp.server"):
            for i in range(200):
                srv.mass_inform("blob", b"x" * 1000, i)
                # the fast client keeps up
                await fast.expect(re.compile(rb"#blob x+ %d" % i))
        assert "Disconnecting slow client" in caplog.text
        assert [conn.is_closing() for conn in srv._connections] == [True, False]
        # The slow client gets what was queued, then #disconnect, then EOF.
        slow.resume_reading()
        data = await asyncio.wait_for(slow.reader.read(), 60)
        lines = data.splitlines()
        assert lines[-1] == b"#disconnect client\\_too\\_slow:\\_write\\_backlog\\_exceeded"
        assert all(line.startswith(b"#blob ") for line in lines[:-1])
        await slow.close()
        assert await fast.request(b"?echo still-here") == [b"!echo ok still-here"]
        await fast.close()


async def test_burst_of_async_informs_does_not_drop_fast_client() -> None:
    async with running(sched(max_backlog=20_000)) as srv, await connect(srv) as peer:
        for i in range(40):  # 40 kB in one loop iteration, but the socket takes it
            srv.mass_inform("blob", b"x" * 1000, i)
        for i in range(40):
            await peer.expect(re.compile(rb"#blob x+ %d" % i))
        assert await peer.request(b"?echo ok") == [b"!echo ok ok"]


async def test_slow_reader_that_never_reads_is_aborted() -> None:
    async with running(sched(max_backlog=20_000)) as srv:
        slow = await connect(srv)
        slow.pause_reading()
        for i in range(500):
            srv.mass_inform("blob", b"x" * 1000, i)
        await asyncio.sleep(srv.disconnect_timeout + 1)
        assert len(srv._connections) == 0
        await slow.close()


async def test_stop_cancels_in_flight() -> None:
    srv = await start()
    peers = [await connect(srv) for _ in range(3)]
    for i, peer in enumerate(peers):
        await peer.send(b"?sleep[%d] 100 p%d" % (i + 1, i), b"?echo quick")
    while srv.running < 3:
        await asyncio.sleep(0.1)
    await srv.stop()
    for i, peer in enumerate(peers):
        lines = (await asyncio.wait_for(peer.reader.read(), 60)).splitlines()
        assert lines[-3:] == [
            b"!echo ok quick",
            b"!sleep[%d] fail request\\_cancelled" % (i + 1),
            b"#disconnect server\\_shutting\\_down",
        ]
        await peer.close()
    assert srv.cleaned_up == 3
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_halt_behind_long_request() -> None:
    """?halt on the connection of a long request is handled at once (aiokatcp 2.x)."""
    srv = await start()
    loop = asyncio.get_running_loop()
    async with await connect(srv) as peer:
        t0 = loop.time()
        await peer.send(b"?sleep[1] 1000 a", b"?sleep[2] 1000 b", b"?halt[3]")
        lines = (await asyncio.wait_for(peer.reader.read(), 60)).splitlines()
        assert lines == [
            b"!halt[3] ok",
            b"!sleep[1] fail request\\_cancelled",
            b"!sleep[2] fail request\\_cancelled",
            b"#disconnect server\\_shutting\\_down",
        ]
        assert loop.time() - t0 < 1
    await srv.join()


async def test_stop_without_cancel_waits() -> None:
    srv = await start()
    loop = asyncio.get_running_loop()
    async with await connect(srv) as peer:
        await peer.send(b"?sleep 5 x")
        await asyncio.sleep(1)
        t0 = loop.time()
        await srv.stop(cancel=False)
        assert loop.time() - t0 == pytest.approx(4)
        await peer.expect(b"!sleep ok x", b"#disconnect server\\_shutting\\_down")
        await peer.expect_eof()


async def test_request_during_shutdown_gets_no_reply() -> None:
    srv = await start()
    async with await connect(srv) as peer:
        await peer.send(b"?sleep 5 x")
        await asyncio.sleep(1)
        halt = srv.halt(cancel=False)
        await peer.send(b"?echo late")
        await halt
        lines = (await asyncio.wait_for(peer.reader.read(), 60)).splitlines()
        assert lines == [b"!sleep ok x", b"#disconnect server\\_shutting\\_down"]
    await srv.join()


async def test_eof_answers_pipelined_requests_then_closes(server: SchedServer) -> None:
    async with await connect(server) as peer:
        await peer.send(b"?sleep 1 a", b"?echo b")
        peer.writer.write_eof()
        await peer.expect(b"!echo ok b", b"!sleep ok a")
        await peer.expect_eof()
    await asyncio.sleep(0)
    assert not server._connections


async def test_client_disconnect_with_request_in_flight(server: SchedServer) -> None:
    peer = await connect(server)
    await peer.send(b"?sleep 2 gone")
    await asyncio.sleep(1)
    await peer.close()
    await asyncio.sleep(2)
    assert server.cleaned_up == 1
    async with await connect(server) as other:
        assert await other.request(b"?echo ok") == [b"!echo ok ok"]


async def test_many_connections(server: SchedServer) -> None:
    # (kept small: the in-memory network's selector scans every socket on each iteration)
    peers = [await ScriptedPeer.connect_to(server) for _ in range(40)]
    for i, peer in enumerate(peers):
        peer.send_nowait(b"?echo %d" % i)
    for i, peer in enumerate(peers):
        while True:
            line = await peer.readline()
            if line.startswith(b"!"):
                assert line == b"!echo ok %d" % i
                break
    for peer in peers:
        await peer.close()


@pytest.mark.real_loop
async def test_real_socket_ipv4() -> None:
    async with running(SchedServer("127.0.0.1", 0)) as srv:
        port = srv.port
        assert port != 0
        async with await ScriptedPeer.connect("127.0.0.1", port, timeout=30) as peer:
            await peer.expect_connect()
            assert await peer.request(b"?echo[1] hello") == [b"!echo[1] ok hello"]
            lines = await peer.request(b"?client-list")
            assert re.fullmatch(rb"#client-list 127\.0\.0\.1:\d+", lines[0])
            await peer.send(b"?sleep 0.01 z", b"?watchdog")
            await peer.expect(b"!watchdog ok", b"!sleep ok z")


@pytest.mark.real_loop
async def test_real_socket_500_connections() -> None:
    async with running(SchedServer("127.0.0.1", 0)) as srv:
        port = srv.port
        streams = await asyncio.gather(
            *(asyncio.open_connection("127.0.0.1", port) for _ in range(500))
        )
        for i, (_, writer) in enumerate(streams):
            writer.write(b"?echo[1] %d\n" % i)

        async def reply(reader: asyncio.StreamReader) -> bytes:
            while True:
                line = await reader.readline()
                if line.startswith(b"!") or not line:
                    return line

        replies = await asyncio.wait_for(
            asyncio.gather(*(reply(reader) for reader, _ in streams)), 30
        )
        assert replies == [b"!echo[1] ok %d\n" % i for i in range(500)]
        for _, writer in streams:
            writer.close()
        for _, writer in streams:
            await writer.wait_closed()


def _have_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.real_loop
@pytest.mark.skipif(not _have_ipv6(), reason="::1 is not available")
async def test_real_socket_ipv6() -> None:
    async with running(SchedServer("::1", 0)) as srv:
        async with await ScriptedPeer.connect("::1", srv.port, timeout=30) as peer:
            await peer.expect_connect()
            lines = await peer.request(b"?client-list")
            assert re.fullmatch(rb"#client-list \[::1\]:\d+", lines[0])


@pytest.mark.real_loop
async def test_real_socket_given_listening_socket() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    async with running(SchedServer("ignored", 1, sock=sock)) as srv:
        assert srv.port == port
        async with await ScriptedPeer.connect("127.0.0.1", port, timeout=30) as peer:
            await peer.expect_connect()
            assert await peer.request(b"?watchdog") == [b"!watchdog ok"]


class RecordingTransport(asyncio.Transport):
    """Records each write (one per system call a real transport would make)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: List[bytes] = []

    def write(self, data: object) -> None:
        self.writes.append(bytes(data))  # type: ignore[call-overload]

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("10.0.0.1", 1234) if name == "peername" else default


async def connected(srv: DeviceServer, transport: RecordingTransport) -> ClientConnection:
    """A connection of `srv` on `transport`, its greeting written and cleared."""
    conn = ClientConnection(srv, srv.limit)
    conn.connection_made(transport)
    for _ in range(3):
        await asyncio.sleep(0)
    transport.writes.clear()
    return conn


async def test_awaited_handlers_replies_batched() -> None:
    """Replies of async handlers run in one step leave in one write, in order."""
    srv = SchedServer("127.0.0.1", 0)
    transport = RecordingTransport()
    conn = await connected(srv, transport)
    conn.data_received(b"?quick[1] 1\n?quick[2] 2\n?quick[3] 3\n")
    for _ in range(5):
        await asyncio.sleep(0)
    assert transport.writes == [b"!quick[1] ok 1\n!quick[2] ok 2\n!quick[3] ok 3\n"]
    # A handler that really waits: what came before it is sent first.
    conn.data_received(b"?quick[4] 4\n?sleep[5] 1 s\n?quick[6] 6\n")
    for _ in range(5):
        await asyncio.sleep(0)
    assert transport.writes[1:] == [b"!quick[4] ok 4\n!quick[6] ok 6\n"]
    await asyncio.sleep(2)
    assert transport.writes[2:] == [b"!sleep[5] ok s\n"]
    conn.connection_lost(None)


async def test_quick_async_handler_replies_without_a_loop_iteration() -> None:
    """A handler that never waits is answered inside data_received, in a real task."""
    srv = SchedServer("127.0.0.1", 0)
    transport = RecordingTransport()
    conn = await connected(srv, transport)
    seen: List[List[bytes]] = []

    # A task group inside a handler needs asyncio.TaskGroup (Python 3.11+).
    middle = b"group[2] 0" if hasattr(asyncio, "TaskGroup") else b"quick[2] 0"

    def receive() -> None:  # as the event loop calls it: outside any task
        conn.data_received(b"?quick[1] 1\n?" + middle + b"\n?quick[3] 3\n")
        seen.append(list(transport.writes))

    asyncio.get_running_loop().call_soon(receive)
    await asyncio.sleep(0)
    # the replies were written before data_received returned, in arrival order
    assert seen == [[b"!quick[1] ok 1\n!" + middle.replace(b" ", b" ok ") + b"\n!quick[3] ok 3\n"]]
    conn.connection_lost(None)


class MarkServer(SchedServer):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.marks: List[bytes] = []

    def request_mark(self, ctx: RequestContext, tag: bytes) -> bytes:
        """Record the order in which requests start."""
        self.marks.append(tag)
        return tag


class PausingTransport(RecordingTransport):
    """Also records each change of reading (True: reading, False: paused)."""

    def __init__(self) -> None:
        super().__init__()
        self.reading: List[bool] = []

    def pause_reading(self) -> None:
        self.reading.append(False)

    def resume_reading(self) -> None:
        self.reading.append(True)


def receive_outside_task(conn: ClientConnection, data: bytes) -> None:
    """Feed `data` as the event loop does (from a callback, outside any task)."""
    asyncio.get_running_loop().call_soon(conn.data_received, data)


async def test_burst_starts_at_once_the_rest_in_later_passes_in_order() -> None:
    """At most REQUEST_BURST requests start per loop pass; the others follow, in order."""
    srv = MarkServer("127.0.0.1", 0)
    burst = srv.REQUEST_BURST
    ta, tb = RecordingTransport(), RecordingTransport()
    a = await connected(srv, ta)
    b = await connected(srv, tb)
    ta.writes.clear()  # (b's #client-connected)
    n = 3 * burst + 10
    receive_outside_task(a, b"".join(b"?mark a%d\n" % i for i in range(n)))
    await asyncio.sleep(0)
    # The first burst was answered inside data_received; the rest wait their turn...
    assert srv.marks == [b"a%d" % i for i in range(burst)]
    assert ta.writes == [b"".join(b"!mark ok a%d\n" % i for i in range(burst))]
    # ...while the connections are still read: b's requests, read now, queue behind a's.
    receive_outside_task(b, b"?mark b0\n?mark b1\n")
    for _ in range(10):
        await asyncio.sleep(0)
    assert srv.marks == [b"a%d" % i for i in range(n)] + [b"b0", b"b1"]
    assert b"".join(ta.writes) == b"".join(b"!mark ok a%d\n" % i for i in range(n))
    assert b"".join(tb.writes) == b"!mark ok b0\n!mark ok b1\n"
    a.connection_lost(None)
    b.connection_lost(None)


async def test_burst_beyond_it_does_not_pause_reading() -> None:
    srv = MarkServer("127.0.0.1", 0)
    transport = PausingTransport()
    conn = await connected(srv, transport)
    receive_outside_task(conn, b"".join(b"?mark %d\n" % i for i in range(500)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(srv.marks) == 500
    assert False not in transport.reading
    conn.connection_lost(None)


async def test_queued_requests_are_bounded() -> None:
    """Past a quarter of max_input_buffered of queued requests, reading pauses until done."""
    srv = MarkServer("127.0.0.1", 0, max_input_buffered=64 * 1024)
    transport = PausingTransport()
    conn = await connected(srv, transport)
    n = 2000  # about 1 MB of queued requests as counted (512 bytes each plus arguments)
    receive_outside_task(conn, b"".join(b"?mark %d\n" % i for i in range(n)))
    await asyncio.sleep(0)
    assert transport.reading == [False]
    for _ in range(n // srv.REQUEST_BURST + 5):
        await asyncio.sleep(0)
    assert transport.reading == [False, True]  # resumed once the FIFO was empty
    assert srv.marks == [b"%d" % i for i in range(n)]
    assert b"".join(transport.writes) == b"".join(b"!mark ok %d\n" % i for i in range(n))
    conn.connection_lost(None)


async def test_pipelining_connections_are_served_fairly() -> None:
    """Connections that keep requests in flight all progress at the same rate.

    Each of 8 clients keeps 64 requests in flight, sending a new one for each reply
    (replies are read from the socket as they come, as a load generator does).
    """
    async with running(sched()) as srv:
        peers = [await connect(srv) for _ in range(8)]
        answered = [0] * len(peers)
        total = 4000

        async def client(i: int, peer: ScriptedPeer) -> None:
            peer.send_nowait(*[b"?echo %d" % i] * 64)
            while sum(answered) < total:
                line = await peer.readline()
                if line.startswith(b"!echo"):
                    answered[i] += 1
                    peer.send_nowait(b"?echo %d" % i)

        tasks = [asyncio.create_task(client(i, peer)) for i, peer in enumerate(peers)]
        while sum(answered) < total:
            await asyncio.sleep(0.001)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert min(answered) > 0.8 * max(answered), answered
        for peer in peers:
            await peer.close()


async def test_bulk_sampling_initial_reports_leave_in_one_write_per_batch() -> None:
    srv = MarkServer("127.0.0.1", 0)
    for i in range(120):
        srv.sensors.add(Sensor(int, f"s{i:03d}", ""))
    transport = RecordingTransport()
    conn = await connected(srv, transport)
    names = b",".join(b"s%03d" % i for i in range(120))
    receive_outside_task(conn, b"?sensor-sampling[1] " + names + b" auto\n")
    for _ in range(10):
        await asyncio.sleep(0)
    batches = [w.count(b"#sensor-status") for w in transport.writes]
    assert sum(batches) == 120
    # Three batches (50, 50, 20), held until the last (under 64 KiB), and the reply.
    assert len(transport.writes) <= 2
    lines = b"".join(transport.writes).splitlines()
    assert [line.split()[3] for line in lines[:-1]] == [b"s%03d" % i for i in range(120)]
    assert lines[-1] == b"!sensor-sampling[1] ok " + names + b" auto"
    conn.connection_lost(None)


request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var", default="unset")


class TaskServer(SchedServer):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.seen: List[str] = []
        self.same_task: List[bool] = []

    async def request_set_var(self, ctx: RequestContext, value: str) -> None:
        """Set a context variable and finish at once."""
        self.seen.append(request_var.get())
        request_var.set(value)

    async def request_var_across_await(self, ctx: RequestContext, value: str) -> str:
        """Set a context variable, wait, and return what it holds then."""
        self.seen.append(request_var.get())
        request_var.set(value)
        task = asyncio.current_task()
        await asyncio.sleep(1)
        self.same_task.append(asyncio.current_task() is task)
        return request_var.get()

    async def request_cancel_own_task(self, ctx: RequestContext) -> None:
        """Cancel the current task, then finish without waiting."""
        task = asyncio.current_task()
        assert task is not None
        task.cancel()


@needs_311  # (3.9/3.10: a variable set before the first await is not seen after it)
async def test_requests_that_finish_at_once_do_not_share_context() -> None:
    async with running(TaskServer("127.0.0.1", 0)) as srv:
        async with await connect(srv) as peer:
            await peer.send(
                b"?set-var[1] a",
                b"?var-across-await[2] b",
                b"?set-var[3] c",
                b"?var-across-await[4] d",
                b"?set-var[5] e",
            )
            replies = [line for line in await peer.readlines(5)]
        assert sorted(replies) == [
            b"!set-var[1] ok",
            b"!set-var[3] ok",
            b"!set-var[5] ok",
            b"!var-across-await[2] ok b",
            b"!var-across-await[4] ok d",
        ]
        # Every request started in a context of its own...
        assert srv.seen == ["unset"] * 5
        # ...and one that waited went on in its own task and context.
        assert srv.same_task == [True, True]
    assert request_var.get() == "unset"


async def test_handler_cancelling_its_task_then_finishing_spares_the_next() -> None:
    async with running(TaskServer("127.0.0.1", 0)) as srv:
        async with await connect(srv) as peer:
            await peer.send(b"?cancel-own-task[1]", b"?sleep[2] 1 x")
            assert sorted(await peer.readlines(2)) == [
                b"!cancel-own-task[1] ok",
                b"!sleep[2] ok x",
            ]


async def test_held_initial_reports_are_not_overtaken() -> None:
    """An update or a reply written during a bulk subscription comes after the reports before it."""
    srv = MarkServer("127.0.0.1", 0)
    sensors = [Sensor(int, f"s{i:03d}", "", default=0) for i in range(120)]
    for sensor in sensors:
        srv.sensors.add(sensor)
    transport = RecordingTransport()
    conn = await connected(srv, transport)
    names = b",".join(b"s%03d" % i for i in range(120))
    receive_outside_task(conn, b"?sensor-sampling[1] " + names + b" auto\n")
    await asyncio.sleep(0)  # the first batch is done (its reports are held)
    sensors[10].value = 7  # an update of a sensor subscribed in it
    receive_outside_task(conn, b"?mark[2] x\n")
    for _ in range(10):
        await asyncio.sleep(0)
    lines = b"".join(transport.writes).splitlines()
    s010 = [i for i, line in enumerate(lines) if b" s010 " in line]
    assert [lines[i].split()[-1] for i in s010] == [b"0", b"7"]
    mark = lines.index(b"!mark[2] ok x")
    assert all(b" s%03d " % i in b"\n".join(lines[:mark]) for i in range(50))
    assert len([line for line in lines if line.startswith(b"#sensor-status")]) == 121
    assert lines[-1].startswith(b"!sensor-sampling[1] ok")
    conn.connection_lost(None)


class CrashServer(SchedServer):
    async def request_crash_later(self, ctx: RequestContext, value: str) -> None:
        """Set a context variable, wait, then fail."""
        request_var.set(value)
        await asyncio.sleep(1)
        raise RuntimeError("boom")


@needs_311  # (3.9/3.10: a variable set before the first await is not seen after it)
async def test_crash_after_waiting_is_logged_in_the_handlers_context() -> None:
    seen: List[str] = []

    class Record(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            seen.append(request_var.get())
            return True

    record = Record()
    server_logger = logging.getLogger("aiokatcp.server")
    server_logger.addFilter(record)
    try:
        async with running(CrashServer("127.0.0.1", 0)) as srv:
            async with await connect(srv) as peer:
                (reply,) = await peer.request(b"?crash-later[1] mine")
        assert reply.startswith(b"!crash-later[1] fail ")
        assert seen == ["mine"]
    finally:
        server_logger.removeFilter(record)
