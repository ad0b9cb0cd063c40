"""Test helpers shared by the test modules: a scripted, line-level KATCP peer.

:class:`ScriptedPeer` is the "fake the peer, not the library" tool: it talks
raw bytes over an asyncio stream (solipsism's in-memory network in the
normal tests, loopback in ``real_loop`` tests), so a test states the exact
wire lines it sends and expects.
"""

from __future__ import annotations

import asyncio
import re
from typing import List, Optional, Pattern, Type, Union

from hypothesis import strategies as st

from aiokatcp import Message

__all__ = ["Expected", "ScriptedPeer", "messages"]

#: An expected line: exact bytes (without EOL) or a regex that must fullmatch the line.
Expected = Union[bytes, Pattern[bytes]]


class ScriptedPeer:
    """A raw-line peer: send lines, then assert on the exact lines received.

    Parameters
    ----------
    reader, writer
        The stream pair to talk over.
    timeout
        Seconds to wait for each line (virtual seconds on the solipsism loop,
        so a missing line fails fast instead of hanging).
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float = 60.0
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout

    @classmethod
    async def connect(
        cls, host: str, port: int, *, limit: int = 2**24, timeout: float = 60.0
    ) -> ScriptedPeer:
        """Open a connection to `host`:`port`."""
        reader, writer = await asyncio.open_connection(host, port, limit=limit)
        return cls(reader, writer, timeout)

    async def __aenter__(self) -> ScriptedPeer:
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], *args: object) -> None:
        await self.close()

    def send_nowait(self, *lines: bytes) -> None:
        """Queue raw lines for sending (a newline is appended to each unless present)."""
        data = b"".join(line if line.endswith((b"\n", b"\r")) else line + b"\n" for line in lines)
        self.writer.write(data)

    async def send(self, *lines: bytes) -> None:
        """Send raw lines (a newline is appended to each unless present)."""
        self.send_nowait(*lines)
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        """Send bytes exactly as given."""
        self.writer.write(data)
        await self.writer.drain()

    def pause_reading(self) -> None:
        """Stop taking data from the socket (to act as a slow or stalled client)."""
        self.writer.transport.pause_reading()  # type: ignore[attr-defined]

    def resume_reading(self) -> None:
        """Undo :meth:`pause_reading`."""
        self.writer.transport.resume_reading()  # type: ignore[attr-defined]

    async def readline(self) -> bytes:
        """Read one line, without its newline; ``b""`` at end of stream."""
        line = await asyncio.wait_for(self.reader.readline(), self.timeout)
        return line.rstrip(b"\n")

    async def readlines(self, count: int) -> List[bytes]:
        """Read exactly `count` lines."""
        return [await self.readline() for _ in range(count)]

    async def expect(self, *expected: Expected) -> List[bytes]:
        """Read one line per expected item and check it; return the lines read."""
        lines = []
        for item in expected:
            line = await self.readline()
            if isinstance(item, bytes):
                assert line == item, f"expected {item!r}, got {line!r}"
            else:
                assert item.fullmatch(line), f"expected match for {item.pattern!r}, got {line!r}"
            lines.append(line)
        return lines

    async def expect_connect(self) -> List[bytes]:
        """Read the three ``#version-connect`` informs a server sends first."""
        return await self.expect(
            re.compile(rb"#version-connect katcp-protocol 5\.1-\w+"),
            re.compile(rb"#version-connect katcp-library aiokatcp-\S+ aiokatcp-\S+"),
            re.compile(rb"#version-connect katcp-device .*"),
        )

    async def request(self, line: bytes) -> List[bytes]:
        """Send a request line; return every line up to and including its reply.

        The reply is recognised as the first ``!`` line with the request's
        name (and message ID, if any).
        """
        match = re.match(rb"\?([A-Za-z][A-Za-z0-9-]*(?:\[\d+\])?)", line)
        assert match, f"not a request: {line!r}"
        reply_head = b"!" + match.group(1)
        await self.send(line)
        lines = []
        while True:
            got = await self.readline()
            assert got, f"connection closed while waiting for {reply_head!r}"
            lines.append(got)
            if got == reply_head or got.startswith(reply_head + b" "):
                return lines

    async def expect_eof(self) -> None:
        """Check that the peer closed the connection with nothing more to say."""
        rest = await asyncio.wait_for(self.reader.read(), self.timeout)
        assert rest == b"", f"expected end of stream, got {rest!r}"

    async def close(self) -> None:
        """Close the connection and wait for it to be closed."""
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


def messages(max_args: int, max_arg_size: int) -> st.SearchStrategy[Message]:
    """Hypothesis strategy for arbitrary valid messages (binary arguments included)."""
    return st.builds(
        lambda mtype, name, args, mid: Message(mtype, name, *args, mid=mid),
        st.sampled_from(list(Message.Type)),
        st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,10}\Z"),
        st.lists(st.binary(max_size=max_arg_size), max_size=max_args),
        st.one_of(st.none(), st.integers(1, 2**31 - 1)),
    )
