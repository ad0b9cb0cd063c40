"""Helpers for testing your own KATCP device servers and clients.

Everything here is built on aiokatcp's public API and works with any test
runner; :mod:`aiokatcp.testing.plugin` wraps it in pytest fixtures. Importing
this module imports neither pytest nor async-solipsism: the virtual clock
(:func:`virtual_clock_loop`) loads async-solipsism only when it is used.

See :doc:`/testing` for a guide.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import ipaddress
import re
import threading
from typing import (
    Any,
    AsyncContextManager,
    AsyncIterator,
    Callable,
    List,
    Optional,
    Pattern,
    Tuple,
    Type,
    TypeVar,
    Union,
    overload,
)

from aiokatcp._compat import timeout as timeout_scope
from aiokatcp.client import Client
from aiokatcp.exceptions import FailReply, InvalidReply
from aiokatcp.sensor import Reading, Sensor
from aiokatcp.server import DeviceServer

__all__ = [
    "Expected",
    "PeerServer",
    "ScriptedPeer",
    "assert_request_fails",
    "client_for",
    "running",
    "virtual_clock_loop",
    "wait_for_sensor",
]

_S = TypeVar("_S", bound=DeviceServer)
_C = TypeVar("_C", bound=Client)
_T = TypeVar("_T")

#: An expected line: exact bytes (without the newline) or a compiled regex that
#: must match the whole line.
Expected = Union[bytes, Pattern[bytes]]


# -- device servers ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(server: _S) -> AsyncIterator[_S]:
    """Start `server`, yield it, and stop it on exit.

    A server made with port 0 listens on a free port; find it with
    :attr:`.DeviceServer.port` or :attr:`.DeviceServer.address`.

    Raises
    ------
    Exception
        on exit, the failure of a service task or of
        :meth:`~.DeviceServer.on_stop`, as :meth:`.DeviceServer.stop`
        raises it, so a broken background task fails the test. (To test such
        a failure, put ``pytest.raises`` around the whole ``async with``.) If
        the body raised too, the body's exception is the ``__context__``.
        A cancelled body stays cancelled.
    """
    await server.start()
    try:
        yield server
    except Exception:
        await server.stop()
        raise
    except BaseException:
        # Cancellation or KeyboardInterrupt: stop, but do not turn it into another error.
        with contextlib.suppress(Exception):
            await server.stop()
        raise
    else:
        await server.stop()


def _connectable(host: str) -> str:
    """The loopback address to reach a server listening on a wildcard address."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host or "127.0.0.1"
    if addr.is_unspecified:
        return "::1" if addr.version == 6 else "127.0.0.1"
    return host


@overload
def client_for(
    server: DeviceServer, *, client_class: Type[_C], **client_kwargs: Any
) -> AsyncContextManager[_C]: ...


@overload
def client_for(server: DeviceServer, **client_kwargs: Any) -> AsyncContextManager[Client]: ...


def client_for(
    server: DeviceServer, *, client_class: Type[Client] = Client, **client_kwargs: Any
) -> AsyncContextManager[Client]:
    """Connect a client to a running `server`; close it on exit.

    Parameters
    ----------
    server
        A started server (for example inside :func:`running`). A server
        listening on a wildcard address is reached over loopback.
    client_class
        :class:`.Client` or your subclass of it.
    **client_kwargs
        Passed to :meth:`.Client.connect` (for example ``auto_reconnect``).

    Raises
    ------
    RuntimeError
        if `server` is not started
    """
    host, port = server.address
    return _client(client_class, _connectable(host), port, client_kwargs)


@contextlib.asynccontextmanager
async def _client(client_class: Type[_C], host: str, port: int, kwargs: Any) -> AsyncIterator[_C]:
    client = await client_class.connect(host, port, **kwargs)
    try:
        yield client
    finally:
        client.close()
        await client.wait_closed()


async def assert_request_fails(
    client: Client, name: str, *args: Any, match: Union[str, Pattern[str], None] = None
) -> Union[FailReply, InvalidReply]:
    """Check that request `name` gets a ``fail`` or ``invalid`` reply.

    Parameters
    ----------
    client
        A connected client.
    name, *args
        The request, as for :meth:`.Client.request`.
    match
        A regular expression that must be found (:func:`re.search`) in the
        reply's message.

    Returns
    -------
    FailReply or InvalidReply
        The exception :meth:`.Client.request` raised, for further checks.

    Raises
    ------
    AssertionError
        if the request succeeds, or its message does not match `match`
    """
    try:
        reply, _ = await client.request(name, *args)
    except (FailReply, InvalidReply) as exc:
        if match is not None and not re.search(match, str(exc)):
            pattern = match if isinstance(match, str) else match.pattern
            raise AssertionError(
                f"?{name} failed with {str(exc)!r}, which does not match {pattern!r}"
            ) from exc
        return exc
    raise AssertionError(f"?{name} succeeded (reply {reply!r}); expected it to fail")


# -- sensors ----------------------------------------------------------------------------------


async def wait_for_sensor(
    sensor: Sensor[_T],
    condition: Union[_T, Callable[[Reading[_T]], bool]],
    timeout: Optional[float] = 5.0,
) -> Reading[_T]:
    """Wait until `sensor` has a value, or a reading that satisfies a predicate.

    Works for a server's own sensors and for sensors mirrored by a
    :class:`.SensorWatcher` alike: it watches the :class:`.Sensor` object.
    The current reading counts, so this returns at once if it already
    matches. Updates made from another thread are handled.

    Parameters
    ----------
    sensor
        The sensor to watch.
    condition
        A value to wait for (compared with ``==``), or a callable that takes
        the :class:`.Reading` and returns true when it is the one wanted
        (use it to check the status or timestamp too).
    timeout
        Seconds to wait (``None``: no limit).

    Returns
    -------
    Reading
        The first reading that matched.

    Raises
    ------
    TimeoutError
        if no reading matched in time (the message shows the last reading)
    """
    if callable(condition):
        predicate: Callable[[Reading[_T]], bool] = condition
    else:

        def predicate(reading: Reading[_T]) -> bool:
            return bool(reading.value == condition)

    reading = sensor.reading
    if predicate(reading):
        return reading
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    future: asyncio.Future[Reading[_T]] = loop.create_future()

    def check(reading: Reading[_T]) -> None:
        if future.done():
            return
        try:
            if predicate(reading):
                future.set_result(reading)
        except Exception as exc:
            future.set_exception(exc)

    def observer(sensor: Sensor[_T], reading: Reading[_T]) -> None:
        if threading.get_ident() == loop_thread:
            check(reading)
        else:
            loop.call_soon_threadsafe(check, reading)

    sensor.attach(observer)
    try:
        async with timeout_scope(timeout):
            return await future
    except asyncio.TimeoutError:
        raise TimeoutError(
            f"sensor {sensor.name!r} did not reach {_describe(condition)} within "
            f"{timeout} s; last reading {sensor.reading!r}"
        ) from None
    finally:
        sensor.detach(observer)


def _describe(condition: object) -> str:
    if callable(condition):
        return f"a reading satisfying {getattr(condition, '__name__', repr(condition))}"
    return f"value {condition!r}"


# -- scripted peers ---------------------------------------------------------------------------


class ScriptedPeer:
    """A raw-line KATCP peer: send exact lines, check the exact lines received.

    Use it as a client to test a device server byte for byte, or (accepted
    by a :class:`PeerServer`) as a fake device to test a client. Checks raise
    :exc:`AssertionError`; a line that does not arrive within `timeout`
    raises :exc:`TimeoutError`, so a test fails instead of hanging.

    Parameters
    ----------
    reader, writer
        The stream pair to talk over.
    timeout
        Seconds to wait for each line.
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

    @classmethod
    async def connect_to(cls, server: DeviceServer, *, timeout: float = 60.0) -> ScriptedPeer:
        """Connect to a running device server (over loopback if it listens on a wildcard)."""
        host, port = server.address
        return await cls.connect(_connectable(host), port, timeout=timeout)

    async def __aenter__(self) -> ScriptedPeer:
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], *args: object) -> None:
        await self.close()

    # -- sending

    def send_nowait(self, *lines: bytes) -> None:
        """Queue raw lines for sending (a newline is appended to each unless present)."""
        data = b"".join(line if line.endswith((b"\n", b"\r")) else line + b"\n" for line in lines)
        self.writer.write(data)

    async def send(self, *lines: bytes) -> None:
        """Send raw lines (a newline is appended to each unless present)."""
        self.send_nowait(*lines)
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        """Send bytes exactly as given (partial lines, odd line endings, ...)."""
        self.writer.write(data)
        await self.writer.drain()

    def pause_reading(self) -> None:
        """Stop taking data from the socket (to act as a slow or stalled peer)."""
        self.writer.transport.pause_reading()  # type: ignore[attr-defined]

    def resume_reading(self) -> None:
        """Undo :meth:`pause_reading`."""
        self.writer.transport.resume_reading()  # type: ignore[attr-defined]

    # -- receiving

    async def readline(self) -> bytes:
        """Read one line, without its newline; ``b""`` at end of stream."""
        try:
            async with timeout_scope(self.timeout):
                line = await self.reader.readline()
        except asyncio.TimeoutError:
            raise TimeoutError(f"no line received within {self.timeout} s") from None
        return line.rstrip(b"\n")

    async def readlines(self, count: int) -> List[bytes]:
        """Read exactly `count` lines."""
        return [await self.readline() for _ in range(count)]

    async def expect(self, *expected: Expected) -> List[bytes]:
        """Read one line per expected item and check it; return the lines read.

        An item is the exact line (bytes, without the newline) or a compiled
        ``bytes`` regex that must match the whole line.
        """
        lines = []
        for item in expected:
            line = await self.readline()
            if isinstance(item, bytes):
                if line != item:
                    raise AssertionError(f"expected {item!r}, got {line!r}")
            elif not item.fullmatch(line):
                raise AssertionError(f"expected a match for {item.pattern!r}, got {line!r}")
            lines.append(line)
        return lines

    async def expect_connect(self) -> List[bytes]:
        """Read the three ``#version-connect`` informs an aiokatcp server sends first."""
        return await self.expect(
            re.compile(rb"#version-connect katcp-protocol 5\.1-\w+"),
            re.compile(rb"#version-connect katcp-library aiokatcp-\S+ aiokatcp-\S+"),
            re.compile(rb"#version-connect katcp-device .*"),
        )

    async def request(self, line: bytes) -> List[bytes]:
        """Send a request line; return every line up to and including its reply.

        The reply is the first ``!`` line with the request's name (and
        message ID, if any); informs and other lines before it are returned
        too.
        """
        match = re.match(rb"\?([A-Za-z][A-Za-z0-9-]*(?:\[\d+\])?)", line)
        if not match:
            raise ValueError(f"not a request: {line!r}")
        reply_head = b"!" + match.group(1)
        await self.send(line)
        lines = []
        while True:
            got = await self.readline()
            if not got:
                raise AssertionError(f"connection closed while waiting for {reply_head!r}")
            lines.append(got)
            if got == reply_head or got.startswith(reply_head + b" "):
                return lines

    async def expect_eof(self) -> None:
        """Check that the other side closed the connection with nothing more to say."""
        try:
            async with timeout_scope(self.timeout):
                rest = await self.reader.read()
        except asyncio.TimeoutError:
            raise TimeoutError(f"connection still open after {self.timeout} s") from None
        if rest != b"":
            raise AssertionError(f"expected end of stream, got {rest!r}")

    # -- closing

    async def close(self) -> None:
        """Close the connection cleanly and wait until it is closed."""
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    async def reset(self) -> None:
        """Drop the connection abruptly (no clean shutdown), as a crashed peer would."""
        self.writer.transport.abort()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


class PeerServer:
    """A fake device: a listening socket whose connections become :class:`ScriptedPeer`\\ s.

    Point the client under test at :attr:`address`, then :meth:`accept`
    each connection it makes and script the conversation. Use it as an
    async context manager (start on entry, close everything on exit) or
    call :meth:`start` and :meth:`close`.

    Parameters
    ----------
    host
        Address to listen on.
    timeout
        Seconds :meth:`accept` waits for a connection, and the
        :attr:`ScriptedPeer.timeout` of each peer.
    """

    #: What :meth:`accept` sends first by default: a KATCP v5.1 device with
    #: message IDs, multi-client and ``?request-timeout-hint`` support.
    DEFAULT_GREETING = b"#version-connect katcp-protocol 5.1-MIB"

    def __init__(self, host: str = "127.0.0.1", *, timeout: float = 60.0) -> None:
        self.host = host
        self.timeout = timeout
        # Made on first use: before Python 3.10 a Queue binds to the loop current when made.
        self._peers: Optional[asyncio.Queue[ScriptedPeer]] = None
        #: Every connection accepted so far.
        self.all_peers: List[ScriptedPeer] = []
        self.server: Optional[asyncio.AbstractServer] = None
        self._closed_servers: List[asyncio.AbstractServer] = []
        #: The port listened on (0 before :meth:`start`).
        self.port = 0

    @property
    def peers(self) -> asyncio.Queue[ScriptedPeer]:
        """Connections accepted but not yet handed out by :meth:`accept`."""
        if self._peers is None:
            self._peers = asyncio.Queue()
        return self._peers

    @property
    def address(self) -> Tuple[str, int]:
        """``(host, port)`` to connect the client under test to."""
        return self.host, self.port

    async def start(self, port: int = 0) -> None:
        """Start listening on `port` (0: a free port; reuse a port to test reconnection)."""
        self.server = await asyncio.start_server(self._accept, self.host, port)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = ScriptedPeer(reader, writer, self.timeout)
        self.all_peers.append(peer)
        await self.peers.put(peer)

    async def accept(self, greeting: Optional[bytes] = DEFAULT_GREETING) -> ScriptedPeer:
        """Wait for the next connection, send it `greeting` (unless ``None``), return it.

        Raises
        ------
        TimeoutError
            if no connection arrives within :attr:`timeout`
        """
        try:
            async with timeout_scope(self.timeout):
                peer = await self.peers.get()
        except asyncio.TimeoutError:
            raise TimeoutError(f"no connection within {self.timeout} s") from None
        if greeting is not None:
            await peer.send(greeting)
        return peer

    async def stop(self) -> None:
        """Stop listening (connections already made stay open)."""
        if self.server is not None:
            self.server.close()
            self._closed_servers.append(self.server)
            self.server = None

    async def close(self) -> None:
        """Stop listening and close every connection."""
        await self.stop()
        for peer in self.all_peers:
            await peer.close()
        # Since Python 3.12.1, wait_closed() also waits for the server's connections.
        for server in self._closed_servers:
            await server.wait_closed()
        self._closed_servers.clear()

    async def __aenter__(self) -> PeerServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


# -- virtual clock ----------------------------------------------------------------------------


def virtual_clock_loop() -> asyncio.AbstractEventLoop:
    """Make an event loop with a virtual clock (an ``async_solipsism.EventLoop``).

    On it, time advances only when every task is waiting, straight to the
    next timer: ``await asyncio.sleep(3600)`` returns at once, and a test
    that would wait forever fails instead of hanging. Use it as a loop
    factory (for example from pytest-asyncio's
    ``pytest_asyncio_loop_factories`` hook, or the ``virtual_clock`` marker
    of :mod:`aiokatcp.testing.plugin`).

    Caveats: there are no real sockets on this loop. ``asyncio.start_server``
    and ``open_connection`` (and so :class:`.DeviceServer` and
    :class:`.Client`) work on an in-memory network shared by the loop, so
    connections to other processes or real hosts are impossible. Wall-clock
    functions (:func:`time.time`, which sensor timestamps use) do not follow
    the virtual clock, and work in other threads takes real time.

    Raises
    ------
    ImportError
        if async-solipsism is not installed
    """
    try:
        solipsism = importlib.import_module("async_solipsism")
    except ImportError as exc:
        raise ImportError(
            "the virtual clock needs async-solipsism (pip install async-solipsism)"
        ) from exc
    loop: asyncio.AbstractEventLoop = solipsism.EventLoop()
    return loop
