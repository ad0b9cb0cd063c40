"""An event loop running in a thread of its own, for blocking (threaded) callers.

SHIM: minimal stand-in for the agreed API of issue-13 (``aiokatcp.LoopThread``);
the lead drops this file at merge in favour of issue-13's version.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Callable, Coroutine, Optional, TypeVar

__all__ = ["LoopThread"]

_T = TypeVar("_T")


class LoopThread:
    """Run an asyncio event loop in a daemon thread; hand it work from other threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        """Start the loop's thread (returns once the loop runs)."""
        if self._thread is not None:
            return
        started = threading.Event()
        self.loop.call_soon(started.set)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        started.wait()

    def close(self) -> None:
        """Stop the loop, join its thread and close the loop."""
        if self._thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self._thread = None
        if not self.loop.is_closed():
            self.loop.close()

    def __enter__(self) -> LoopThread:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _check_thread(self) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run/call called from the loop's own thread")

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run `coro` on the loop and block until it is done; return its result."""
        try:
            self._check_thread()
        except RuntimeError:
            coro.close()
            raise
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Call ``fn(*args)`` on the loop's thread and block for the result."""
        self._check_thread()
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result()
