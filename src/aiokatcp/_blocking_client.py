"""A KATCP client for code without an event loop (scripts, notebooks, threads).

Why: katcp-python users query devices from plain threads with
``BlockingClient``/``CallbackClient``. Here the protocol stays in the asyncio
:class:`~aiokatcp.Client`; this module only runs one on a
:class:`~aiokatcp.LoopThread` and turns its coroutines into blocking calls,
:class:`concurrent.futures.Future` objects, or callbacks.
"""

from __future__ import annotations

import asyncio  # noqa: TID251 - drives a Client on its loop thread
import builtins
import concurrent.futures
import logging
import threading
from typing import Any, Callable, Coroutine, FrozenSet, List, Optional, Set, Tuple, TypeVar, cast

from ._loop_thread import LoopThread
from ._message import Message
from ._protocol_flags import ProtocolFlags
from .client import Client
from .sensor import Reading

__all__ = ["BlockingClient"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
#: How long close() waits for the connection to close before stopping the loop regardless.
_CLOSE_TIMEOUT = 5.0
ReplyAndInforms = Tuple[Message, List[Message]]


class BlockingClient:
    """A KATCP client whose methods block (or call back) instead of being awaited.

    It owns a background :class:`~aiokatcp.LoopThread` running an
    :class:`~aiokatcp.Client` that connects (and by default reconnects) in
    the background. Every method may be called from any number of threads
    at once. Use it as a context manager, or call :meth:`close`.

    Parameters
    ----------
    host, port
        The device to connect to.
    timeout
        Default time limit in seconds for each request (as in katcp-python),
        including the wait for a connection if there is none yet.
    auto_reconnect
        Passed to :class:`~aiokatcp.Client`.
    **kwargs
        Other keyword arguments for :class:`~aiokatcp.Client` (e.g. ``keepalive``).

    Raises
    ------
    RuntimeError
        from every method after :meth:`close`, and at once from a blocking
        method called on the client's own loop thread (e.g. from a callback),
        where waiting would deadlock
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: Optional[float] = 5.0,
        auto_reconnect: bool = True,
        **kwargs: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._closed = False
        self._inflight: Set[asyncio.Task[Any]] = set()  # requests running (loop thread only)
        self._close_lock = threading.Lock()
        self._loop_thread = LoopThread(name=f"aiokatcp-blocking-{host}:{port}").start()
        try:
            self._client: Client = self._loop_thread.run(
                self._make_client(host, port, auto_reconnect, kwargs)
            )
        except BaseException:
            self._loop_thread.close()
            raise

    @staticmethod
    async def _make_client(host: str, port: int, auto_reconnect: bool, kwargs: Any) -> Client:
        return Client(host, port, auto_reconnect=auto_reconnect, **kwargs)

    # -- life cycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection and stop the loop thread (idempotent).

        Calls still in flight on other threads raise
        :exc:`ConnectionAbortedError`; later calls raise :exc:`RuntimeError`.
        """
        if self._loop_thread.in_loop_thread():
            raise RuntimeError("BlockingClient.close() called from its own loop thread")
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._loop_thread.run(self._aclose(), timeout=_CLOSE_TIMEOUT)
        except TimeoutError:
            logger.warning("%r did not close within %s s; stopping its loop", self, _CLOSE_TIMEOUT)
        finally:
            self._loop_thread.close()

    async def _aclose(self) -> None:
        self._client.close()
        await self._client.wait_closed()
        # Let the calls in flight see the closed client and fail with a clear error
        # (they do so at once) before the loop stops and would cancel them.
        inflight = [task for task in self._inflight if not task.done()]
        if inflight:
            await asyncio.wait(inflight, timeout=_CLOSE_TIMEOUT)

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("connected" if self.is_connected else "connecting")
        return f"<BlockingClient {self.host}:{self.port} {state}>"

    @property
    def client(self) -> Client:
        """The underlying asyncio client (use it only on :attr:`loop_thread`)."""
        return self._client

    @property
    def loop_thread(self) -> LoopThread:
        """The loop thread the client runs on."""
        return self._loop_thread

    @property
    def is_connected(self) -> bool:
        """Whether the client is connected and ready for requests."""
        return self._client.is_connected

    @property
    def protocol_flags(self) -> FrozenSet[str]:
        """The server's protocol flags (see :attr:`.Client.protocol_flags`)."""
        return self._client.protocol_flags

    @property
    def protocol(self) -> ProtocolFlags:
        """The dialect in use (see :attr:`.Client.protocol` and :doc:`/v4`)."""
        return self._client.protocol

    def convert_seconds(self, seconds: float) -> float:
        """A time in the device's units: milliseconds for KATCP v4 (as katcp-python)."""
        return self._client.convert_seconds(seconds)

    def wait_connected(self, timeout: Optional[float] = None) -> None:
        """Block until the client is connected.

        Raises
        ------
        TimeoutError
            if `timeout` (seconds; ``None``: no limit) expires first
        Exception
            the connection error if the client gives up (``auto_reconnect=False``)
        """
        self._wait(self._wait_connected(timeout))

    async def _wait_connected(self, timeout: Optional[float]) -> None:
        await self._in_time(self._client.wait_connected(), timeout, "connection")

    # -- requests -----------------------------------------------------------------------------

    def request(
        self, name: str, *args: Any, timeout: Optional[float] = None
    ) -> Tuple[List[bytes], List[Message]]:
        """Send a request, block for the reply; return the arguments after ``ok`` and the informs.

        Parameters
        ----------
        timeout
            Seconds to wait for a connection and the reply (default: the
            constructor's `timeout`).

        Raises
        ------
        FailReply, InvalidReply
            if the reply is ``fail``, or ``invalid`` or malformed
        TimeoutError
            if `timeout` expires
        ConnectionError
            if the connection is lost before the reply arrives
        """
        return self._wait(self._request_ok(name, args, timeout))

    def request_raw(
        self, name: str, *args: Any, timeout: Optional[float] = None
    ) -> ReplyAndInforms:
        """Like :meth:`request`, but return the reply message whatever its code."""
        return self._wait(self._request_raw(name, args, timeout))

    def future_request(
        self, name: str, *args: Any, timeout: Optional[float] = None
    ) -> concurrent.futures.Future[Tuple[List[bytes], List[Message]]]:
        """Send a request and return at once a future for what :meth:`request` would return.

        Does not block, so it may also be called on the loop thread.
        """
        return self._submit(self._request_ok(name, args, timeout))

    def callback_request(
        self,
        name: str,
        *args: Any,
        reply_cb: Optional[Callable[[Message], None]] = None,
        inform_cb: Optional[Callable[[Message], None]] = None,
        timeout: Optional[float] = None,
    ) -> None:
        """Send a request and return at once; call the callbacks as the answer arrives.

        `inform_cb` is called with each inform of the request as it arrives,
        then `reply_cb` with the reply. If there is no reply (timeout, lost
        connection, close) `reply_cb` gets a made-up ``!name fail <reason>``.
        Both run on the loop thread: they must not block (hand work to
        another thread, e.g. through a :class:`queue.Queue`) and must not
        call blocking methods of this client. An exception they raise is
        logged and ignored.
        """
        self._submit(self._callback_request(name, args, reply_cb, inform_cb, timeout))

    async def _callback_request(
        self,
        name: str,
        args: Tuple[Any, ...],
        reply_cb: Optional[Callable[[Message], None]],
        inform_cb: Optional[Callable[[Message], None]],
        timeout: Optional[float],
    ) -> None:
        try:
            reply, _ = await self._request_raw(name, args, timeout, inform_cb)
        except asyncio.CancelledError:
            reply = Message.reply(name, "fail", "client closed")
        except Exception as exc:
            reply = Message.reply(name, "fail", str(exc) or type(exc).__name__)
        if reply_cb is not None:
            _call_safely(reply_cb, reply)

    async def _request_ok(
        self, name: str, args: Tuple[Any, ...], timeout: Optional[float]
    ) -> Tuple[List[bytes], List[Message]]:
        return cast(Tuple[List[bytes], List[Message]], await self._request(name, args, timeout))

    async def _request_raw(
        self,
        name: str,
        args: Tuple[Any, ...],
        timeout: Optional[float],
        inform_cb: Optional[Callable[[Message], None]] = None,
    ) -> ReplyAndInforms:
        return cast(ReplyAndInforms, await self._request(name, args, timeout, True, inform_cb))

    async def _request(
        self,
        name: str,
        args: Tuple[Any, ...],
        timeout: Optional[float],
        raw: bool = False,
        inform_cb: Optional[Callable[[Message], None]] = None,
    ) -> Any:
        """Wait (within `timeout`) for a connection if needed, then send the request."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            return await self._request_now(name, args, timeout, raw, inform_cb)
        except ConnectionError as exc:
            if self._closed:
                raise ConnectionAbortedError(f"BlockingClient was closed during ?{name}") from exc
            raise
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _request_now(
        self,
        name: str,
        args: Tuple[Any, ...],
        timeout: Optional[float],
        raw: bool,
        inform_cb: Optional[Callable[[Message], None]],
    ) -> Any:
        if timeout is None:
            timeout = self.timeout
        client = self._client
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        if not client.is_connected:
            await self._in_time(client.wait_connected(), timeout, f"connection for ?{name}")
        remaining = None if deadline is None else max(0.0, deadline - loop.time())
        callback = None if inform_cb is None else _safe_callback(inform_cb)
        try:
            if raw:
                return await client.request_raw(
                    name, *args, timeout=remaining, inform_callback=callback
                )
            return await client.request(name, *args, timeout=remaining, inform_callback=callback)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no reply to ?{name} within {timeout} s") from None

    async def _in_time(
        self, coro: Coroutine[Any, Any, _T], timeout: Optional[float], what: str
    ) -> _T:
        try:
            return await asyncio.wait_for(coro, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no {what} within {timeout} s") from None

    # -- sensors ------------------------------------------------------------------------------

    def sensor_reading(self, name: str, type: Optional[builtins.type] = None) -> Reading[Any]:
        """Query one sensor's reading (see :meth:`.Client.sensor_reading`), within `timeout`.

        `type` is the Python type to decode the value as (default: from ``?sensor-list``).
        """
        return self._wait(self._sensor(name, type, value=False))

    def sensor_value(self, name: str, type: Optional[builtins.type] = None) -> Any:
        """Query one sensor's value (see :meth:`.Client.sensor_value`), within `timeout`."""
        return self._wait(self._sensor(name, type, value=True))

    async def _sensor(self, name: str, sensor_type: Optional[builtins.type], *, value: bool) -> Any:
        client = self._client
        if value:
            query: Coroutine[Any, Any, Any] = client.sensor_value(name, sensor_type)
        else:
            query = client.sensor_reading(name, sensor_type)
        return await self._in_time(self._after_connect(query), self.timeout, f"answer for {name}")

    async def _after_connect(self, coro: Coroutine[Any, Any, _T]) -> _T:
        try:
            if not self._client.is_connected:
                await self._client.wait_connected()
        except BaseException:
            coro.close()
            raise
        return await coro

    # -- plumbing -----------------------------------------------------------------------------

    def _submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self!r} is closed")
        try:
            return self._loop_thread.submit(coro)
        except RuntimeError:
            raise RuntimeError(f"{self!r} is closed") from None

    def _wait(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if self._loop_thread.in_loop_thread():
            coro.close()
            raise RuntimeError(
                "blocking BlockingClient call from its own loop thread (e.g. in a callback) "
                "would deadlock; use callback_request or future_request there"
            )
        future = self._submit(coro)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise ConnectionAbortedError("BlockingClient was closed during the call") from None
        except ConnectionError as exc:
            if self._closed:
                raise ConnectionAbortedError("BlockingClient was closed during the call") from exc
            raise


def _call_safely(callback: Callable[[Message], None], msg: Message) -> None:
    try:
        callback(msg)
    except Exception:
        logger.exception("Exception in BlockingClient callback %r for %s", callback, msg)


def _safe_callback(callback: Callable[[Message], None]) -> Callable[[Message], None]:
    def wrapper(msg: Message) -> None:
        _call_safely(callback, msg)

    return wrapper


# The public home of the class is the package (``aiokatcp.BlockingClient``).
BlockingClient.__module__ = "aiokatcp"
