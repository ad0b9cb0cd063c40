"""An asyncio event loop running in a background thread, driven from synchronous code.

Why: scripts, notebooks and hardware-model threads have no event loop of
their own, yet want to start a :class:`~aiokatcp.DeviceServer` or talk to a
:class:`~aiokatcp.Client`. :class:`LoopThread` owns one loop in one daemon
thread and hands coroutines and calls to it. A blocking call made *from* the
loop thread would wait for itself forever, so it raises at once instead.
"""

from __future__ import annotations

import asyncio  # noqa: TID251 - this module owns a loop and its thread
import concurrent.futures
import threading
from typing import Any, Callable, Coroutine, Optional, Set, TypeVar

__all__ = ["LoopThread"]

_T = TypeVar("_T")


class LoopThread:
    """Run an asyncio event loop in a background thread.

    Use it as a context manager (``with LoopThread() as lt: ...``) or call
    :meth:`start` and :meth:`close`. :meth:`run` and :meth:`call` may be
    called from any thread except the loop thread itself, and from many
    threads at once.

    Parameters
    ----------
    name
        Name of the thread (shown in logs and debuggers).
    """

    def __init__(self, *, name: str = "aiokatcp-loop") -> None:
        self.name = name
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.RLock()  # re-entered when a tracked future is already done
        self._closed = False
        # Futures handed out and not yet done: cancelled after the loop stops, so that a
        # caller whose work the loop never got to is not left waiting for ever.
        self._pending: Set[concurrent.futures.Future[Any]] = set()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> LoopThread:
        """Start the thread and its loop (returns when the loop is running); returns `self`.

        Raises
        ------
        RuntimeError
            if already started or closed
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("LoopThread is closed")
            if self._thread is not None:
                raise RuntimeError("LoopThread is already started")
            loop = asyncio.new_event_loop()
            running = threading.Event()
            thread = threading.Thread(target=self._main, args=(loop, running), name=self.name)
            thread.daemon = True  # a forgotten close() must not keep the process alive
            self._loop = loop
            self._thread = thread
            thread.start()
        running.wait()
        return self

    def close(self) -> None:
        """Cancel the loop's remaining tasks, stop the loop and join the thread.

        Idempotent. Threads blocked in :meth:`run` on a task that gets
        cancelled receive :exc:`concurrent.futures.CancelledError`.

        Raises
        ------
        RuntimeError
            if called from the loop thread (it cannot join itself)
        """
        with self._lock:
            if self._closed:
                return
            self._check_not_loop_thread("close")
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        with self._lock:
            pending, self._pending = self._pending, set()
        for future in pending:
            future.cancel()

    def __enter__(self) -> LoopThread:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @staticmethod
    def _main(loop: asyncio.AbstractEventLoop, running: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.call_soon(running.set)
            loop.run_forever()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    # -- using the loop -----------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop (only touch it from its thread, or through ``*_threadsafe``).

        Raises
        ------
        RuntimeError
            if not started
        """
        if self._loop is None:
            raise RuntimeError("LoopThread is not started")
        return self._loop

    def in_loop_thread(self) -> bool:
        """Whether the caller is running on the loop thread."""
        thread = self._thread
        return thread is not None and thread.ident == threading.get_ident()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Schedule `coro` on the loop and return a future for its result (does not block).

        May be called from any thread, the loop thread included.

        Raises
        ------
        RuntimeError
            if the loop thread is not running (`coro` is closed, not leaked)
        """
        try:
            with self._lock:
                future = asyncio.run_coroutine_threadsafe(coro, self._live_loop())
                self._track(future)
        except BaseException:
            coro.close()
            raise
        return future

    def run(self, coro: Coroutine[Any, Any, _T], timeout: Optional[float] = None) -> _T:
        """Run `coro` on the loop, block until it finishes and return its result.

        Its exception, if any, is raised here.

        Parameters
        ----------
        timeout
            If given, cancel `coro` and raise :exc:`TimeoutError` after this
            many seconds.

        Raises
        ------
        RuntimeError
            at once if called from the loop thread (waiting would deadlock),
            or if the loop thread is not running
        TimeoutError
            if `timeout` expires
        """
        try:
            self._check_not_loop_thread("run")
        except RuntimeError:
            coro.close()
            raise
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"coroutine did not finish within {timeout} s") from None

    def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Call ``fn(*args)`` on the loop thread, block and return its result (or raise).

        If `fn` returns an awaitable it is *not* awaited; use :meth:`run`.

        Raises
        ------
        RuntimeError
            at once if called from the loop thread, or if it is not running
        """
        self._check_not_loop_thread("call")
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def wrapper() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

        with self._lock:
            self._live_loop().call_soon_threadsafe(wrapper)
            self._track(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise RuntimeError("LoopThread was closed before the call ran") from None

    def _track(self, future: concurrent.futures.Future[Any]) -> None:
        """Remember `future` until it is done (caller holds the lock)."""
        self._pending.add(future)
        future.add_done_callback(self._untrack)

    def _untrack(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _live_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if self._closed or loop is None or loop.is_closed():
            raise RuntimeError(
                "LoopThread is closed" if self._closed else "LoopThread is not started"
            )
        return loop

    def _check_not_loop_thread(self, what: str) -> None:
        if self.in_loop_thread():
            raise RuntimeError(
                f"LoopThread.{what}() called from the loop thread itself; "
                "it would wait for itself forever (await the coroutine instead)"
            )


# The public home of the class is the package (``aiokatcp.LoopThread``).
LoopThread.__module__ = "aiokatcp"
