"""The server's side of one client connection: :class:`ClientConnection`.

asyncio layer (re-exported by :mod:`aiokatcp.server`). Besides the
:class:`~aiokatcp.connection.Connection` interface a client connection
has the *asynchronous* writes used for informs the client did not ask for
(``#sensor-status``, ``#log``, ``#client-connected``...), with the
slow-client rule: if its unsent data grows past the server's
``max_backlog``, it is sent ``#disconnect`` and dropped, so one stalled
client cannot make the server's memory grow without bound. It also holds
the client's sensor sampling (:class:`~aiokatcp._server_sampling.ClientSampling`)
and decides when the connection is read: not while the server's request
FIFO is in use, nor while the client does not take its replies.

Every byte written to the client goes through :meth:`ClientConnection._write`,
which writes the client's coalesced sensor reports first (so nothing
overtakes them) and then applies the slow-client rule to the whole backlog
(unsent bytes, corked bytes and coalesced reports), replies and ``#log``
included. The connection also reports changes of its unfinished input to
the server (the server-wide input bound) and when it last received data
(the idle timeout).

The server is reached only through the :class:`ServerOwner` protocol.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Dict, Optional, Protocol

from ._message import Message
from ._sampler import SensorSampler
from ._server_sampling import ClientSampling, StatusCache
from .connection import Connection, ConnectionOwner
from .sensor import Reading, Sensor

__all__ = ["ClientConnection", "ServerOwner"]


class ServerOwner(ConnectionOwner, Protocol):
    """What a :class:`ClientConnection` needs of its server."""

    max_backlog: int
    disconnect_timeout: float
    status_cache: StatusCache
    disconnect_counts: Dict[str, int]

    def _input_changed(self, conn: Any, delta: int) -> None: ...  # pragma: no cover


class ClientConnection(Connection):
    """The server's side of one client connection (see the module docstring).

    Parameters
    ----------
    owner
        The device server.
    limit
        Maximum request line length in bytes.

    Attributes
    ----------
    sampling : ClientSampling
        The client's sensor sampling.
    inflight : int
        Requests of this client in progress.
    last_input : float
        Loop time at which data last arrived from the client (or it connected).
    """

    __module__ = "aiokatcp.server"
    owner: ServerOwner
    coalesce_writes = True

    def __init__(self, owner: ServerOwner, limit: int) -> None:
        super().__init__(owner, True, limit)
        self.sampling = ClientSampling(self, owner.status_cache)
        self.inflight = 0
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.thread_id: Optional[int] = None
        self._server_paused = False
        self._eof = False
        self._dropping = False
        self._abort_handle: Optional[asyncio.TimerHandle] = None
        self.last_input = 0.0
        self._high_water = 0
        self._reported_input = 0  # unfinished input last reported to the server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.loop = loop = asyncio.get_running_loop()
        self.thread_id = threading.get_ident()
        self.last_input = loop.time()
        # Until the transport pauses writing, it holds at most its high-water mark.
        try:
            self._high_water = int(transport.get_write_buffer_limits()[1])  # type: ignore[attr-defined]
        except (AttributeError, TypeError, ValueError, IndexError, NotImplementedError):
            self._high_water = 0
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        loop = self.loop
        if loop is not None:
            self.last_input = loop.time()
        super().data_received(data)
        now = self.buffered
        delta = now - self._reported_input
        if delta:
            self._reported_input = now
            self.owner._input_changed(self, delta)

    def discard_input(self) -> None:
        super().discard_input()
        held = self._reported_input
        if held:
            self._reported_input = 0
            self.owner._input_changed(self, -held)

    @property
    def dropping(self) -> bool:
        """Whether the client is being disconnected by a limit (see :meth:`drop`)."""
        return self._dropping

    # -- reading ---------------------------------------------------------------------------

    def set_server_paused(self, paused: bool) -> None:
        """Pause (or resume) reading because the server's request FIFO is in use."""
        self._server_paused = paused
        self._update_reading()

    def _update_reading(self) -> None:
        if self._server_paused or self._write_paused:
            self.pause_reading()
        else:
            self.resume_reading()

    def pause_writing(self) -> None:
        # The client does not take its replies: read no more requests from it.
        super().pause_writing()
        self._update_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._update_reading()
        sampling = self.sampling
        if (sampling.pending or sampling.held) and not self._write_paused:
            self._write(b"")  # writes the coalesced sensor reports

    def request_started(self) -> None:
        """Count a request of this client in progress."""
        self.inflight += 1

    def request_finished(self) -> None:
        """A request of this client is answered; close if the client half-closed and is done."""
        self.inflight -= 1
        if self._eof and not self.inflight:
            self.close()

    def half_closed(self) -> None:
        """The client closed its side: close once its requests in progress are answered."""
        self._eof = True
        if not self.inflight:
            self.close()

    # -- writes ------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        # The one path of every write to the client (replies, informs, #log).
        sampling = self.sampling
        if sampling.pending or sampling.held:
            # Coalesced and held sensor reports go first: nothing may overtake them.
            pending = sampling.take_output()
            super()._write(pending + data if data else pending)
        elif data:
            super()._write(data)
        # (Cheap test first: unpaused, the transport holds at most its high-water mark.)
        if self._write_paused or self._corked_size + self._high_water > self.owner.max_backlog:
            self.check_backlog()

    def check_backlog(self) -> None:
        """Drop the client if its backlog (unsent, corked, coalesced) exceeds ``max_backlog``.

        While one of its ``?sensor-sampling`` requests runs the client is
        not judged (the burst is its own doing and the request drains it).
        """
        if self._dropping or self.sampling.requests:
            return
        max_backlog = self.owner.max_backlog
        backlog = self.get_write_buffer_size() + self.sampling.pending_size
        if backlog > max_backlog:
            if self._corked and not self._cork_depth:
                # Part of it is only gathered for this loop iteration's write: hand it to
                # the socket first, and judge the client on what it has not taken.
                self._flush()
                backlog = self.get_write_buffer_size() + self.sampling.pending_size
            if backlog > max_backlog and not self.is_closing():
                self.owner.disconnect_counts["slow"] += 1
                self.drop(
                    "client too slow: write backlog exceeded",
                    f"Disconnecting slow client: {backlog} bytes unsent exceeds "
                    f"max_backlog ({max_backlog})",
                )

    def write_async_bytes(self, data: bytes) -> None:
        """Write pre-encoded asynchronous messages, dropping the client if it is too slow."""
        if self._dropping or self.is_closing():
            return  # nobody to tell: an asynchronous message is not worth a warning
        self._write(data)

    def write_async_message(self, msg: Message) -> None:
        """Write one asynchronous message (see :meth:`write_async_bytes`)."""
        self.write_async_bytes(bytes(msg))

    def drop(self, reason: str, log_text: str) -> None:
        """Disconnect the client: log `log_text`, send ``#disconnect`` `reason`, close.

        Nothing more is read from it or queued for it (its coalesced
        reports and unfinished input are discarded), and if it does not
        take the goodbye within the server's ``disconnect_timeout`` the
        connection is aborted.
        """
        if self._dropping:
            return
        self._dropping = True
        self.logger.warning("%s", log_text)
        self.sampling.take_output()  # (dropped: the client is being disconnected)
        self.discard_input()
        self.write_message(Message.inform("disconnect", reason))
        self.close()
        # If it still does not read, do not wait for ever for the goodbye to be delivered.
        loop = asyncio.get_running_loop()
        self._abort_handle = loop.call_later(self.owner.disconnect_timeout, self.abort)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self._abort_handle is not None:
            self._abort_handle.cancel()
            self._abort_handle = None
        self.discard_input()  # (gives its share of the server-wide input bound back)
        super().connection_lost(exc)
        self.sampling.take_pending()
        self.sampling.close_all()

    # -- sensor sampling: the aiokatcp 2.x names -------------------------------------------

    @property
    def samplers_lock(self) -> asyncio.Lock:
        """Serialises this client's ``?sensor-sampling`` requests."""
        return self.sampling.lock

    def set_sampler(self, s: Sensor[Any], sampler: Optional[SensorSampler[Any]]) -> None:
        """Install `sampler` (or ``None``) for sensor `s`, closing the one it replaces."""
        self.sampling.set(s, sampler)

    def get_sampler(self, s: Sensor[Any]) -> Optional[SensorSampler[Any]]:
        """This client's sampler for sensor `s`, or ``None``."""
        return self.sampling.get(s)

    def sensor_update(self, s: Sensor[Any], reading: Reading[Any]) -> None:
        """Send a reading of `s` as ``#sensor-status`` (the observer used by samplers)."""
        self.sampling.observer(s, reading)
