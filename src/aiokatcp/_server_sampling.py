"""Per-client sensor sampling on the server side, and the ``#sensor-status`` format.

asyncio layer. A :class:`ClientSampling` holds one client connection's
samplers (one per sensor), the lock serialising its ``?sensor-sampling``
requests and the observer its samplers report to. It writes through the
narrow :class:`SamplingSink` protocol (the connection), so it does not
depend on the connection or server modules. Rules:

* every sampler belongs to exactly one client and is closed when the
  client replaces or clears it, when its sensor leaves the server, or when
  the client goes away (:meth:`ClientSampling.close_all`);
* a reading is formatted once (:class:`StatusCache`) and the same bytes go
  to every client that reports it; a client's reports are gathered into one
  write per loop iteration;
* while one of the client's own ``?sensor-sampling`` requests runs, reports
  are not subject to the slow-client limit (the burst is the client's own
  doing, and the request drains it as it goes);
* while the client's output is backed up (the transport paused writing),
  reports are *coalesced*: they are held, one per sensor, and a newer
  report of a sensor replaces the held one and moves to the end, so what
  the client eventually gets is its report stream with superseded readings
  left out (nothing reordered). The connection writes the coalesced reports
  when writing resumes and before anything else it writes (a reply must
  not overtake them), so memory per client is bounded by its sensors
  times their reading size;
* the initial reports of a bulk ``?sensor-sampling`` are *held* over its
  batches and written in chunks of up to :data:`HELD_OUTPUT` bytes; like
  coalesced reports they go out before anything else the connection writes.

``_sensor_wire.status_args``/``status_line`` are the server's one formatter of
sensor readings on the wire (``#sensor-status`` and ``#sensor-value``).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Dict, List, Optional, Protocol

from ._protocol_flags import ProtocolFlags
from ._sampler import SensorSampler
from ._sensor_wire import status_line
from .sensor import Reading, Sensor

__all__ = ["ClientSampling", "SamplingSink", "StatusCache", "ThreadSafeLoop"]

_Observer = Callable[[Sensor[Any], Reading[Any]], None]


#: Bytes of a bulk ``?sensor-sampling``'s initial reports gathered over its
#: batches before they are written (fewer, larger writes).
HELD_OUTPUT = 64 * 1024


class StatusCache:
    """The ``#sensor-status`` bytes of each sensor's latest reported reading.

    Keyed by sensor, validated by reading identity: every client that
    reports the same :class:`Reading` object reuses one formatted line.
    """

    __slots__ = ("_data", "_millis", "_readings")

    def __init__(self, millis: Optional[ProtocolFlags] = None) -> None:
        # Two dicts rather than one of tuples: no object per sensor for the GC to scan.
        self._readings: Dict[Sensor[Any], Reading[Any]] = {}
        self._data: Dict[Sensor[Any], bytes] = {}
        #: The protocol of a device writing milliseconds (v4), else None (see status_args).
        self._millis = millis

    def get(self, sensor: Sensor[Any], reading: Reading[Any]) -> bytes:
        """The ``#sensor-status`` line of `reading` of `sensor`."""
        if self._readings.get(sensor) is reading:
            return self._data[sensor]
        data = status_line(sensor, reading, self._millis)
        self._readings[sensor] = reading
        self._data[sensor] = data
        return data

    def discard(self, sensor: Sensor[Any]) -> None:
        """Forget `sensor` (it left the server)."""
        self._readings.pop(sensor, None)
        self._data.pop(sensor, None)


class _PendingCall:
    """Handle of a timer requested from another thread (see :class:`ThreadSafeLoop`)."""

    __slots__ = ("cancelled", "handle")

    def __init__(self) -> None:
        self.cancelled = False
        self.handle: Optional[asyncio.TimerHandle] = None

    def cancel(self) -> None:
        self.cancelled = True
        if self.handle is not None:
            self.handle.cancel()


class ThreadSafeLoop:
    """The event loop as the server's samplers see it.

    ``Sensor.set_value`` may be called on any thread, and a sampler then
    runs on that thread; a timer it asks for from there is handed to the
    loop's own thread (``loop.call_at`` is not thread-safe, and the loop
    would not even wake up for it).
    """

    __slots__ = ("_loop", "_thread")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.get_ident()

    def time(self) -> float:
        return self._loop.time()

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Any:
        if threading.get_ident() == self._thread:
            return self._loop.call_at(when, callback, *args)
        pending = _PendingCall()

        def schedule() -> None:
            if not pending.cancelled:
                pending.handle = self._loop.call_at(when, callback, *args)

        self._loop.call_soon_threadsafe(schedule)
        return pending


class SamplingSink(Protocol):
    """What a client's sampling needs of its connection."""

    @property
    def write_paused(self) -> bool: ...  # pragma: no cover

    def check_backlog(self) -> None: ...  # pragma: no cover

    def write_bytes(self, data: bytes) -> None: ...  # pragma: no cover

    def write_async_bytes(self, data: bytes) -> None: ...  # pragma: no cover

    def cork(self) -> None: ...  # pragma: no cover

    def uncork(self) -> None: ...  # pragma: no cover


class ClientSampling:
    """Sampling state of one client connection.

    Parameters
    ----------
    sink
        The connection the reports are written to.
    cache
        The server's shared :class:`StatusCache`.

    Attributes
    ----------
    samplers : dict
        The client's sampler of each sensor it samples.
    lock : asyncio.Lock
        Serialises the client's ``?sensor-sampling`` requests.
    requests : int
        How many of the client's ``?sensor-sampling`` requests are in progress.
    pending : dict
        The coalesced reports held while the client's output is backed up
        (sensor to ``#sensor-status`` bytes, oldest first).
    pending_size : int
        Total bytes of :attr:`pending`.
    held : list of bytes
        Initial reports of a bulk ``?sensor-sampling`` not written yet (see
        :meth:`end_batch`); like :attr:`pending`, they go out before anything
        else written to the client.
    held_size : int
        Total bytes of :attr:`held`.
    """

    __slots__ = (
        "_batch",
        "_cache",
        "_lock",
        "_sampler_loop",
        "_sink",
        "held",
        "held_size",
        "observer",
        "pending",
        "pending_size",
        "requests",
        "samplers",
    )

    def __init__(self, sink: SamplingSink, cache: StatusCache) -> None:
        self.samplers: Dict[Sensor[Any], SensorSampler[Any]] = {}
        self.requests = 0
        self.pending: Dict[Sensor[Any], bytes] = {}
        self.pending_size = 0
        self._lock: Optional[asyncio.Lock] = None
        self._sampler_loop: Optional[ThreadSafeLoop] = None
        self._cache = cache
        # The reports of a batch of a bulk ``?sensor-sampling`` (see :meth:`begin_batch`),
        # and those of finished batches not written yet.
        self._batch: Optional[List[bytes]] = None
        self.held: List[bytes] = []
        self.held_size = 0
        self._sink = sink
        self.observer = self._make_observer(sink, cache)

    def begin_batch(self) -> None:
        """Gather the reports made from now on, until :meth:`end_batch` writes them at once.

        For the synchronous batches of a bulk ``?sensor-sampling`` (thousands
        of initial reports): one write per batch instead of one per sensor.
        Nothing else writes to the client while a batch runs (the loop does
        not run), so the order of the client's output is unchanged.
        """
        self._batch = []

    def end_batch(self, last: bool = True) -> None:
        """End a batch; write its reports, or hold them until :data:`HELD_OUTPUT` bytes.

        Held reports go out before anything else written to the client
        (:meth:`take_output`), and at the latest with the request's last
        batch (`last`), so the client's output keeps its order; only the
        number of system calls (one per batch otherwise) changes.
        """
        batch = self._batch
        self._batch = None
        if batch:
            data = b"".join(batch)
            self.held.append(data)
            self.held_size += len(data)
        if self.held and (last or self.held_size >= HELD_OUTPUT):
            held = self._take_held()
            self._sink.write_bytes(held)

    def take_output(self) -> bytes:
        """Remove and return the waiting reports: the coalesced ones, then the held ones."""
        return self.take_pending() + self._take_held()

    def _take_held(self) -> bytes:
        held = self.held
        if not held:
            return b""
        data = held[0] if len(held) == 1 else b"".join(held)
        self.held = []
        self.held_size = 0
        return data

    @property
    def lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    @property
    def sampler_loop(self) -> ThreadSafeLoop:
        """The loop to give the client's samplers (see :class:`ThreadSafeLoop`)."""
        if self._sampler_loop is None:
            self._sampler_loop = ThreadSafeLoop(asyncio.get_running_loop())
        return self._sampler_loop

    def _make_observer(self, sink: SamplingSink, cache: StatusCache) -> _Observer:
        # Reports are corked until the end of the current loop iteration, so a burst
        # of updates costs one write (one system call) per client.
        corked = False
        try:
            loop: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        thread = threading.get_ident()

        def flush() -> None:
            nonlocal corked
            corked = False
            sink.uncork()

        def observer(sensor: Sensor[Any], reading: Reading[Any]) -> None:
            nonlocal corked, loop
            if loop is None:
                loop = asyncio.get_running_loop()
            elif threading.get_ident() != thread:
                # Sensor.set_value called on another thread: report on the loop's thread.
                loop.call_soon_threadsafe(observer, sensor, reading)
                return
            data = cache.get(sensor, reading)
            if not corked:
                corked = True
                sink.cork()
                loop.call_soon(flush)
            if self.requests:
                batch = self._batch
                if batch is not None:
                    batch.append(data)
                else:
                    sink.write_bytes(data)
            elif self.pending or sink.write_paused:
                pending = self.pending
                old = pending.pop(sensor, None)
                if old is not None:
                    self.pending_size -= len(old)
                pending[sensor] = data
                self.pending_size += len(data)
                sink.check_backlog()
            else:
                sink.write_async_bytes(data)

        return observer

    def take_pending(self) -> bytes:
        """Remove and return the coalesced reports, oldest first (empty if none)."""
        pending = self.pending
        if not pending:
            return b""
        data = b"".join(pending.values())
        pending.clear()
        self.pending_size = 0
        return data

    def get(self, sensor: Sensor[Any]) -> Optional[SensorSampler[Any]]:
        """The client's sampler of `sensor`, if any."""
        return self.samplers.get(sensor)

    def set(self, sensor: Sensor[Any], sampler: Optional[SensorSampler[Any]]) -> None:
        """Install `sampler` (``None``: strategy ``none``), closing the one it replaces."""
        old = self.samplers.pop(sensor, None)
        if old is not None and old is not sampler:
            old.close()
        if sampler is not None:
            self.samplers[sensor] = sampler

    def close_all(self) -> None:
        """Close every sampler (the client went away or cleared its sampling)."""
        samplers = self.samplers
        while samplers:
            _, sampler = samplers.popitem()
            sampler.close()
