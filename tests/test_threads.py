"""LoopThread: an event loop in a background thread, driven from synchronous code.

These tests are synchronous (no async-solipsism loop): LoopThread makes a real
event loop in a real thread. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

import aiokatcp

WAIT = 10.0  # upper bound on any wait; reached only if the code under test is broken


def test_run_returns_result_and_runs_on_the_loop_thread() -> None:
    with aiokatcp.LoopThread() as lt:

        async def where() -> int:
            await asyncio.sleep(0)
            return threading.get_ident()

        assert lt.run(where()) != threading.get_ident()
        assert lt.run(where()) == lt.call(threading.get_ident)


def test_run_raises_the_coroutines_exception() -> None:
    with aiokatcp.LoopThread() as lt:

        async def boom() -> None:
            raise KeyError("boom")

        with pytest.raises(KeyError, match="boom"):
            lt.run(boom())
        with pytest.raises(ZeroDivisionError):
            lt.call(lambda: 1 / 0)


def test_run_from_the_loop_thread_raises_at_once() -> None:
    with aiokatcp.LoopThread() as lt:

        async def inner() -> int:
            return 1

        def nested() -> int:
            return lt.run(inner())

        with pytest.raises(RuntimeError, match="loop thread itself"):
            lt.call(nested)
        with pytest.raises(RuntimeError, match="loop thread itself"):
            lt.call(lt.call, threading.get_ident)
        with pytest.raises(RuntimeError, match="loop thread itself"):
            lt.call(lt.close)
        assert lt.run(inner()) == 1  # the loop is still fine


def test_run_timeout_cancels_the_coroutine() -> None:
    with aiokatcp.LoopThread() as lt:
        cancelled = threading.Event()

        async def forever() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                cancelled.set()

        with pytest.raises(TimeoutError):
            lt.run(forever(), timeout=0.05)
        assert cancelled.wait(WAIT)


def test_submit_from_many_threads() -> None:
    with aiokatcp.LoopThread() as lt:

        async def double(x: int) -> int:
            await asyncio.sleep(0)
            return 2 * x

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda x: lt.run(double(x)), range(200)))
        assert results == [2 * x for x in range(200)]


def test_close_cancels_what_is_left_and_later_use_fails() -> None:
    lt = aiokatcp.LoopThread().start()
    started = threading.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    future = lt.submit(forever())
    assert started.wait(WAIT)
    lt.close()
    lt.close()  # idempotent
    assert future.cancelled()
    assert lt.loop.is_closed()

    async def never_run() -> None:  # pragma: no cover - must not run
        pass

    with pytest.raises(RuntimeError, match="closed"):
        lt.run(never_run())
    with pytest.raises(RuntimeError, match="closed"):
        lt.call(print)
    with pytest.raises(RuntimeError, match="closed"):
        lt.start()


def test_blocked_run_gets_an_error_when_closed_from_another_thread() -> None:
    lt = aiokatcp.LoopThread().start()
    started = threading.Event()
    outcome: list[BaseException] = []

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    def waiter() -> None:
        try:
            lt.run(forever())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    assert started.wait(WAIT)
    lt.close()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], concurrent.futures.CancelledError)


def test_loop_before_start() -> None:
    lt = aiokatcp.LoopThread()
    with pytest.raises(RuntimeError, match="not started"):
        lt.loop  # noqa: B018
    assert not lt.in_loop_thread()
    lt.close()  # closing an unstarted LoopThread is harmless


def test_device_server_started_and_stopped_from_sync_code() -> None:
    class Device(aiokatcp.DeviceServer):
        VERSION = "test-api-1.0"
        BUILD_STATE = "test-1.0"

    with aiokatcp.LoopThread() as lt:

        async def start() -> aiokatcp.DeviceServer:
            server = Device("127.0.0.1", 0)
            await server.start()
            return server

        server = lt.run(start())
        port = server.port
        with aiokatcp.BlockingClient("127.0.0.1", port) as client:
            reply, _ = client.request("watchdog")
            assert reply == []
        lt.run(server.stop())


def test_threaded_tests_get_a_real_loop() -> None:
    # The async tests' virtual-clock loop cannot do real sockets or threads; if a
    # global policy ever made new_event_loop() return one, these tests would be void.
    import async_solipsism

    with aiokatcp.LoopThread() as lt:
        assert not isinstance(lt.loop, async_solipsism.EventLoop)
        assert lt.call(asyncio.get_running_loop) is lt.loop
