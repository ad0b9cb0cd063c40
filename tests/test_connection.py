"""Tests for aiokatcp.connection: framing, owner callbacks, batching, close semantics."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, AsyncIterator, List, Optional, Tuple

import pytest

from aiokatcp import connection
from aiokatcp._codec import DEFAULT_LIMIT as CODEC_DEFAULT_LIMIT
from aiokatcp.connection import Connection, ConnectionLoggerAdapter
from aiokatcp.core import Address, Message
from aiokatcp.exceptions import FailReply, InvalidReply
from helpers import ScriptedPeer


class Owner:
    """Records every callback from a Connection."""

    def __init__(self, keep_open_on_eof: bool = False) -> None:
        self.messages: List[Message] = []
        self.made: List[Connection] = []
        self.lost: List[Optional[Exception]] = []
        self.eofs = 0
        self.keep_open_on_eof = keep_open_on_eof
        self.got_message = asyncio.Event()
        self.reply_to: Optional[bytes] = None

    def handle_message(self, conn: Connection, msg: Message) -> None:
        if msg.name == "boom":
            raise RuntimeError("owner exploded")
        self.messages.append(msg)
        self.got_message.set()
        if msg.mtype == Message.Type.REQUEST:
            conn.write_message(Message.reply_to_request(msg, b"ok"))

    def _connection_made(self, conn: Connection) -> None:
        self.made.append(conn)

    def _connection_lost(self, conn: Connection, exc: Optional[Exception]) -> None:
        self.lost.append(exc)

    def _eof_received(self, conn: Connection) -> bool:
        self.eofs += 1
        return self.keep_open_on_eof


class RecordingTransport(asyncio.Transport):
    """Minimal transport that records writes (to count system calls)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: List[bytes] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return ("10.0.0.1", 1234)
        return default


@pytest.fixture
async def served() -> AsyncIterator[Tuple[Owner, ScriptedPeer]]:
    owner = Owner()
    server = await asyncio.get_running_loop().create_server(
        lambda: Connection(owner, True, 1000), "127.0.0.1", 7000
    )
    peer = await ScriptedPeer.connect("127.0.0.1", 7000)
    yield owner, peer
    await peer.close()
    server.close()
    await server.wait_closed()


def test_reexports() -> None:
    assert connection.DEFAULT_LIMIT == CODEC_DEFAULT_LIMIT == 16 * 1024**2
    assert connection.FailReply is FailReply
    assert connection.InvalidReply is InvalidReply
    assert callable(connection.wrap_handler)


async def test_messages_reach_owner(served: Tuple[Owner, ScriptedPeer]) -> None:
    owner, peer = served
    await peer.send(b"?watchdog[3]", b"#hello a\\_b \\@")
    await peer.expect(b"!watchdog[3] ok")
    assert owner.messages[0] == Message.request("watchdog", mid=3)
    assert owner.messages[1] == Message.inform("hello", b"a b", b"")
    conn = owner.made[0]
    assert isinstance(conn.address, Address)
    assert conn.address.port is not None


async def test_malformed_line_server_logs_and_keeps_connection(
    served: Tuple[Owner, ScriptedPeer], caplog: pytest.LogCaptureFixture
) -> None:
    _, peer = served
    with caplog.at_level(logging.WARNING, "aiokatcp.connection"):
        await peer.send(b"?bad a\\q", b"?watchdog")
        await peer.expect(
            re.compile(
                rb"#log error \d+\.\d+ aiokatcp.connection "
                rb"malformed\\_message:\\_invalid\\_escape.*"
            ),
            b"!watchdog ok",
        )
    assert "Malformed message" in caplog.text


async def test_overlong_line_discarded(served: Tuple[Owner, ScriptedPeer]) -> None:
    owner, peer = served
    # limit is 1000: send 5000 bytes of one line in pieces, then a good request
    await peer.send_raw(b"?long " + b"x" * 2500)
    await peer.send_raw(b"y" * 2500 + b"\n?watchdog\n")
    await peer.expect(
        re.compile(
            rb"#log error \S+ aiokatcp.connection malformed\\_message:\\_line\\_too\\_long.*"
        ),
        b"!watchdog ok",
    )
    conn = owner.made[0]
    assert conn._parser.buffered < 1000
    assert [m.name for m in owner.messages] == ["watchdog"]


async def test_owner_exception_logged(
    served: Tuple[Owner, ScriptedPeer], caplog: pytest.LogCaptureFixture
) -> None:
    _, peer = served
    await peer.send(b"?boom", b"?watchdog")
    await peer.expect(b"!watchdog ok")
    assert "owner exploded" in caplog.text


async def test_eof_closes_by_default(served: Tuple[Owner, ScriptedPeer]) -> None:
    owner, peer = served
    await peer.send(b"?watchdog")
    await peer.expect(b"!watchdog ok")
    peer.writer.write_eof()
    await peer.expect_eof()
    conn = owner.made[0]
    await conn.wait_closed()
    assert owner.eofs == 1
    assert owner.lost == [None]
    assert conn.is_closing()


async def test_write_after_close_warns_once(
    served: Tuple[Owner, ScriptedPeer], caplog: pytest.LogCaptureFixture
) -> None:
    owner, peer = served
    await peer.send(b"?watchdog")
    await peer.expect(b"!watchdog ok")
    conn = owner.made[0]
    conn.close()
    await conn.wait_closed()
    await conn.drain()  # returns at once when closed
    with caplog.at_level(logging.WARNING, "aiokatcp.connection"):
        conn.write_message(Message.inform("x"))
        conn.write_messages([Message.inform("y")])
    assert caplog.text.count("closed before message") == 1
    await peer.expect_eof()


def test_writes_in_one_chunk_are_batched() -> None:
    owner = Owner()
    conn = Connection(owner, True, DEFAULT_LIMIT)
    transport = RecordingTransport()
    conn.connection_made(transport)
    assert str(conn.address) == "10.0.0.1:1234"
    conn.data_received(b"?a[1]\n?b[2]\n?c[3]\n")
    assert transport.writes == [b"!a[1] ok\n!b[2] ok\n!c[3] ok\n"]
    conn.cork()
    conn.write_bytes(b"#x\n")
    conn.write_message(Message.inform("y"))
    assert transport.writes[1:] == []
    assert conn.get_write_buffer_size() == 6
    conn.uncork()
    assert transport.writes[1:] == [b"#x\n#y\n"]
    with pytest.raises(RuntimeError):
        conn.uncork()


def test_client_side_syntax_error_not_answered(caplog: pytest.LogCaptureFixture) -> None:
    owner = Owner()
    conn = Connection(owner, False, DEFAULT_LIMIT)
    transport = RecordingTransport()
    conn.connection_made(transport)
    conn.data_received(b"!bad[0]\n#ok\n")
    assert transport.writes == []
    assert [m.name for m in owner.messages] == ["ok"]
    assert "Malformed" in caplog.text


def test_unterminated_line_at_eof_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    owner = Owner(keep_open_on_eof=True)
    conn = Connection(owner, True, DEFAULT_LIMIT)
    transport = RecordingTransport()
    conn.connection_made(transport)
    conn.data_received(b"?watchdog")
    assert conn.eof_received() is True
    assert owner.messages == []
    assert transport.writes and transport.writes[0].startswith(b"#log error ")


def test_logger_adapter_appends_address() -> None:
    adapter = ConnectionLoggerAdapter(logging.getLogger("x"), {"address": "1.2.3.4:5"})
    msg, _ = adapter.process("hello", {})
    assert msg == "hello [1.2.3.4:5]"


def test_non_ip_peer_gives_placeholder_address() -> None:
    owner = Owner()
    conn = Connection(owner, True, DEFAULT_LIMIT)

    class UnixTransport(RecordingTransport):
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return "/tmp/sock" if name == "peername" else default

    conn.connection_made(UnixTransport())
    assert str(conn.address) == "0.0.0.0"


async def test_drain_waits_for_resume() -> None:
    owner = Owner()
    conn = Connection(owner, True, DEFAULT_LIMIT)
    conn.connection_made(RecordingTransport())
    conn.pause_writing()
    task = asyncio.create_task(conn.drain())
    await asyncio.sleep(1)
    assert not task.done()
    conn.resume_writing()
    await asyncio.wait_for(task, 1)


DEFAULT_LIMIT = connection.DEFAULT_LIMIT


def test_receive_buffer_shared_and_private() -> None:
    """Two reads in flight at once (as on a proactor loop) must not share a buffer."""
    owners = [Owner(), Owner()]
    conns = [Connection(owner, True, DEFAULT_LIMIT) for owner in owners]
    for conn in conns:
        conn.connection_made(RecordingTransport())
    first = conns[0].get_buffer(-1)
    second = conns[1].get_buffer(-1)
    assert len(first) >= 64 * 1024
    assert len(second) >= 64 * 1024
    first[:10] = b"?first[1]\n"
    second[:11] = b"?second[2]\n"
    conns[1].buffer_updated(11)
    conns[0].buffer_updated(10)
    assert owners[0].messages == [Message.request("first", mid=1)]
    assert owners[1].messages == [Message.request("second", mid=2)]
    # Once returned, the shared buffer is handed out again.
    assert conns[1].get_buffer(-1) is first
    conns[1].buffer_updated(0)


async def test_coalesced_writes_flush_once_per_iteration() -> None:
    class Coalescing(Connection):
        coalesce_writes = True

    conn = Coalescing(Owner(), True, DEFAULT_LIMIT)
    transport = RecordingTransport()
    conn.connection_made(transport)
    conn.write_message(Message.inform("a"))
    conn.write_bytes(b"#b\n")
    assert transport.writes == []
    assert conn.get_write_buffer_size() == 6
    await asyncio.sleep(0)
    assert transport.writes == [b"#a\n#b\n"]
    conn.write_message(Message.inform("c"))
    conn.close()  # flushes what is gathered
    assert transport.writes[1:] == [b"#c\n"]


async def test_write_soon_gathers_and_keeps_order() -> None:
    """Writes after a ``_write_soon`` join the gathered data instead of overtaking it."""
    conn = Connection(Owner(), False, DEFAULT_LIMIT)
    transport = RecordingTransport()
    conn.connection_made(transport)
    conn.write_bytes(b"?a[1]\n")  # nothing gathered: written at once
    assert transport.writes == [b"?a[1]\n"]
    conn._write_soon(b"?b[2]\n")
    conn._write_soon(b"?c[3]\n")
    conn.write_bytes(b"?d[4]\n")
    assert transport.writes == [b"?a[1]\n"]
    await asyncio.sleep(0)
    assert transport.writes == [b"?a[1]\n", b"?b[2]\n?c[3]\n?d[4]\n"]
    conn.cork()
    conn._write_soon(b"?e[5]\n")  # corked: the uncork writes it
    conn.uncork()
    assert transport.writes[2:] == [b"?e[5]\n"]
