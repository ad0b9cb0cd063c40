"""A hypothesis state machine for the client's connection life cycle.

Random interleavings of: the peer accepting a connection with various greetings
(v5 with and without ids, an unsupported version, v4 informs, silence), the peer
dropping the connection or sending ``#disconnect``, requests with and without
timeouts, replies, virtual time passing, and the client being closed. After
every step the state-machine invariants of ``doc/dev/client-fsm.rst`` must
hold; at the end every request must have finished (none hangs) with a result
or one of the documented exceptions.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, List, Optional, Tuple

import async_solipsism
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from aiokatcp import Client, ProtocolError
from aiokatcp._client_state import HAVE_CONNECTION, State
from aiokatcp.exceptions import FailReply
from helpers import PeerServer, ScriptedPeer

GREETINGS = [
    b"#version-connect katcp-protocol 5.1-MIB",
    b"#version-connect katcp-protocol 5.0-M",
    b"#version-connect katcp-protocol 6.0-MI",
    b"#version dbe-2.1",
    None,
]
ALLOWED_ERRORS = (BrokenPipeError, ConnectionResetError, asyncio.TimeoutError, FailReply)


class ClientMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = async_solipsism.EventLoop()
        self.peers = PeerServer()
        self.run(self.peers.start(7147))
        self.client = Client("127.0.0.1", 7147, loop=self.loop, negotiation_timeout=2.0)
        self.peer: Optional[ScriptedPeer] = None
        self.requests: List[asyncio.Task[Any]] = []
        self.closed = False
        self.events: List[str] = []
        self.client.add_connected_callback(lambda: self.events.append("connected"))
        self.client.add_disconnected_callback(lambda: self.events.append("disconnected"))

    def run(self, aw: Any) -> Any:
        return self.loop.run_until_complete(aw)

    @rule(greeting=st.sampled_from(GREETINGS))
    def accept(self, greeting: Optional[bytes]) -> None:
        if self.peers.peers.empty():
            return
        self.peer = self.peers.peers.get_nowait()
        if greeting is not None:
            self.send(greeting)

    def send(self, line: bytes) -> None:
        """Send a line from the peer; the client may already have hung up."""
        assert self.peer is not None
        try:
            self.run(self.peer.send(line))
        except ConnectionError:
            pass

    @rule()
    def drop_peer(self) -> None:
        if self.peer is not None:
            self.run(self.peer.close())
            self.peer = None

    @rule()
    def send_disconnect(self) -> None:
        if self.peer is not None:
            self.send(b"#disconnect bye")

    @rule(name=st.sampled_from(["a", "b"]), timeout=st.sampled_from([None, 0.5, 3.0]))
    def request(self, name: str, timeout: Optional[float]) -> None:
        async def request() -> object:
            try:
                return await self.client.request(name, timeout=timeout)
            except ALLOWED_ERRORS as exc:
                return exc  # any other exception fails the test at teardown

        async def start() -> None:
            self.requests.append(asyncio.create_task(request()))

        self.run(start())

    @rule(fail=st.booleans())
    def reply_to_everything_received(self, fail: bool) -> None:
        peer = self.peer
        if peer is None:
            return

        async def reply() -> None:
            while True:
                try:
                    line = await asyncio.wait_for(peer.reader.readline(), 0.01)
                except (asyncio.TimeoutError, ConnectionError):
                    return
                if not line:
                    return
                match = re.match(rb"\?([a-z-]+)(\[\d+\])?", line)
                if match:
                    code = b" fail nope" if fail else b" ok"
                    try:
                        await peer.send(b"!" + match.group(1) + (match.group(2) or b"") + code)
                    except ConnectionError:
                        return

        self.run(reply())

    @rule(seconds=st.sampled_from([0.0, 0.1, 1.0, 2.5, 10.0]))
    def advance(self, seconds: float) -> None:
        self.run(asyncio.sleep(seconds))

    @rule()
    def close(self) -> None:
        self.client.close()
        self.closed = True

    @invariant()
    def state_is_consistent(self) -> None:
        client = self.client
        state = client._state
        assert client.is_connected == (state is State.CONNECTED)
        assert (client._conn is not None) == (state in HAVE_CONNECTION), state
        if state is State.CONNECTED:
            assert client.last_exc is None
        elif state in (State.SLEEPING, State.DISCONNECTING, State.CLOSED):
            assert client.last_exc is not None
        if state not in (State.NEGOTIATING, State.CONNECTED):
            assert len(client._tracker) == 0
        if self.closed:
            assert state in (State.DISCONNECTING, State.CLOSED)
            assert isinstance(client.last_exc, ConnectionAbortedError)
        # Connected and disconnected callbacks alternate, starting with "connected".
        for i, event in enumerate(self.events):
            assert event == ("connected" if i % 2 == 0 else "disconnected")
        if isinstance(client.last_exc, ProtocolError):
            assert state is not State.CONNECTED

    def teardown(self) -> None:
        try:
            self.client.close()
            self.run(self.client.wait_closed())
            assert self.client._state is State.CLOSED
            if self.requests:
                # Requests queued on the no-ids lock fail one per loop iteration; none may
                # still be waiting after a (virtual) second.
                self.run(asyncio.wait(self.requests, timeout=1.0))
            for task in self.requests:
                assert task.done()
                task.result()  # raises anything but the documented errors

            async def wait_connected() -> None:
                await self.client.wait_connected()

            try:
                self.run(wait_connected())
            except Exception as exc:
                assert isinstance(exc, (ConnectionAbortedError, ConnectionError, ProtocolError))
            else:
                raise AssertionError("wait_connected returned on a closed client")
        finally:
            self.run(self.peers.close())
            self.loop.close()


TestClientMachine = ClientMachine.TestCase
TestClientMachine.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


def render_transition_table() -> str:
    """The transition table of ``aiokatcp._client_state`` as an RST table."""
    from aiokatcp._client_state import table_rows

    rows = [("from", "event", "to"), *table_rows()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    rule = " ".join("=" * w for w in widths)

    def line(row: Tuple[str, str, str]) -> str:
        return " ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()

    return "\n".join([rule, line(rows[0]), rule, *(line(row) for row in rows[1:]), rule])


def test_developer_doc_shows_the_transition_table() -> None:
    doc = (Path(__file__).parent.parent / "doc" / "dev" / "client-fsm.rst").read_text()
    begin = doc.index(".. begin-transition-table\n") + len(".. begin-transition-table\n")
    end = doc.index(".. end-transition-table")
    assert doc[begin:end].strip() == render_transition_table()
