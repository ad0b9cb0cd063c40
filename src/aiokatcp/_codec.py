"""Incremental framing: bytes in, messages (or per-line errors) out.

Pure module: no asyncio. :class:`MessageParser` is what a connection feeds
with whatever chunks the socket delivers. Rules (katcp-protocol §2.6, §2.10):

* LF or CR ends a line, so CRLF reads as a line plus an ignored blank line;
* blank and whitespace-only lines are not messages;
* a line longer than the limit (counting its EOL) is an error, and only the
  first ``limit`` bytes of it are ever held in memory;
* a bad line yields a :class:`~aiokatcp.exceptions.KatcpSyntaxError` in the
  output list and parsing carries on at the next line, so one bad line never
  costs the messages around it.
"""

from __future__ import annotations

import re
from typing import Iterable, List, Union

from ._message import Message, _parse_line
from .exceptions import KatcpSyntaxError

__all__ = ["DEFAULT_LIMIT", "MessageParser", "ParseResult", "encode_messages"]

#: Default maximum line length (bytes, including the EOL), as in aiokatcp 2.x.
DEFAULT_LIMIT = 16 * 1024**2

#: What :meth:`MessageParser.feed` returns for each line: a message or the error it raised.
ParseResult = Union[Message, KatcpSyntaxError]

_EOL_RE = re.compile(rb"[\r\n]")


def _find_eol(data: bytes) -> int:
    """Index of the first LF or CR in `data`, or -1 (``memchr`` scans, no regex)."""
    lf = data.find(b"\n")
    cr = data.find(b"\r", 0, lf if lf >= 0 else len(data))
    return cr if cr >= 0 else lf


class MessageParser:
    """Split a byte stream into messages.

    Work is linear in the input however it is chunked: a chunk without an EOL
    is appended to one growing buffer (amortised O(1) per byte, never re-copied
    or re-split per chunk), and a line that reaches the limit is dropped at once
    and the rest of it skipped with a ``memchr`` scan, so it is never held.

    Parameters
    ----------
    limit
        Maximum line length in bytes, including the EOL byte.
    """

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 2:
            raise ValueError("limit must be at least 2")
        self.limit = limit
        # Start of an incomplete line: the bytes left by one chunk, turned into a bytearray
        # (grown in place) only when a chunk without an EOL adds to it.
        self._partial: Union[bytes, bytearray] = b""
        self._discarding = False  # inside an over-long line, waiting for its EOL

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete line being held (never more than ``limit - 1``)."""
        return len(self._partial)

    def feed(self, data: bytes) -> List[ParseResult]:
        """Consume a chunk of bytes; return every complete line's result, in order."""
        out: List[ParseResult] = []
        if self._discarding:
            pos = _find_eol(data)
            if pos < 0:
                return out
            data = data[pos + 1 :]
            self._discarding = False
            out.append(self._too_long())
        if self._partial:
            if b"\n" not in data and b"\r" not in data:
                partial = self._partial
                if len(partial) + len(data) >= self.limit:
                    self._partial = b""  # release it now, not at the EOL
                    self._discarding = True
                else:
                    if type(partial) is bytes:
                        partial = bytearray(partial)
                    partial += data
                    self._partial = partial
                return out
            # The partial line ends in this chunk: joined once, so each byte is copied
            # a bounded number of times whatever the chunking.
            partial = self._partial
            data = (partial if type(partial) is bytes else bytes(partial)) + data
            self._partial = b""
        if b"\r" in data:
            lines = _EOL_RE.split(data)
        else:
            lines = data.split(b"\n")
        rest = lines.pop()
        limit = self.limit
        append = out.append
        for line in lines:
            if not line:
                continue
            if len(line) >= limit:
                append(self._too_long())
                continue
            try:
                msg = _parse_line(line)
            except KatcpSyntaxError as exc:
                # (Without its traceback: it would keep the parsing frames alive, and
                # a chunk of garbage yields one error per line.)
                append(exc.with_traceback(None))
            else:
                if msg is not None:
                    append(msg)
        if len(rest) >= limit:
            self._discarding = True
        else:
            self._partial = rest
        return out

    def _too_long(self) -> KatcpSyntaxError:
        return KatcpSyntaxError(f"line too long (limit is {self.limit} bytes)")

    def feed_eof(self) -> List[ParseResult]:
        """Signal the end of the stream; an unterminated last line is an error."""
        out: List[ParseResult] = []
        if self._discarding:
            out.append(self._too_long())
        elif self._partial.strip(b" \t"):
            partial = bytes(self._partial)
            out.append(KatcpSyntaxError("connection closed in the middle of a line", partial))
        self._partial = b""
        self._discarding = False
        return out


def encode_messages(msgs: Iterable[Message]) -> bytes:
    """Wire form of several messages, ready for a single write."""
    return b"".join([bytes(msg) for msg in msgs])
