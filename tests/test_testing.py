"""The public testing toolkit (aiokatcp.testing), used as a user would use it."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import List

import pytest

import aiokatcp
from aiokatcp import Client, DeviceServer, FailReply, InvalidReply, Sensor, SensorWatcher
from aiokatcp.testing import (
    PeerServer,
    ScriptedPeer,
    _connectable,
    assert_request_fails,
    client_for,
    running,
    virtual_clock_loop,
    wait_for_sensor,
)

ROOT = Path(__file__).resolve().parent.parent


class Device(DeviceServer):
    VERSION = "device-1.0"
    BUILD_STATE = "device-1.0.0"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.level = Sensor(int, "level", "A level", default=0)
        self.sensors.add(self.level)

    async def request_set(self, ctx: aiokatcp.RequestContext, level: int) -> None:
        """Set the level (0 to 10)."""
        if not 0 <= level <= 10:
            raise FailReply(f"level {level} out of range")
        self.level.value = level


class MyClient(Client):
    pass


# -- running / client_for ---------------------------------------------------------------------


async def test_running_starts_on_a_free_port_and_stops() -> None:
    server = Device()
    async with running(server) as got:
        assert got is server
        assert server.port != 0
        assert server.address == ("127.0.0.1", server.port)
        async with await ScriptedPeer.connect_to(server) as peer:
            await peer.expect_connect()
            port = server.port
    with pytest.raises(RuntimeError):
        _ = server.address
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_running_reraises_service_task_failure() -> None:
    async def broken() -> None:
        raise ValueError("service broke")

    with pytest.raises(ValueError, match="service broke"):
        async with running(Device()) as server:
            server.add_service_task(asyncio.create_task(broken()))
            await asyncio.sleep(1)
    # The body failed too: the server's failure is raised, the body's is its context.
    with pytest.raises(ValueError, match="service broke") as info:
        async with running(Device()) as server:
            server.add_service_task(asyncio.create_task(broken()))
            await asyncio.sleep(1)
            raise KeyError("body")
    assert isinstance(info.value.__context__, KeyError)


async def test_running_keeps_body_exception_and_cancellation() -> None:
    server = Device()
    with pytest.raises(KeyError):
        async with running(server):
            raise KeyError("body")
    assert server.sockets == ()

    async def body() -> None:
        async with running(Device()):
            await asyncio.sleep(3600)

    task = asyncio.create_task(body())
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_client_for_connects_and_closes() -> None:
    async with running(Device()) as server:
        async with client_for(server) as client:
            assert client.is_connected
            await client.request("set", 3)
            assert server.level.value == 3
        assert not client.is_connected
        async with client_for(server, client_class=MyClient, auto_reconnect=False) as mine:
            assert isinstance(mine, MyClient)


@pytest.mark.parametrize(
    ("host", "expected"),
    [("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("", "127.0.0.1"), ("::1", "::1"), ("h", "h")],
)
def test_wildcard_listeners_are_reached_over_loopback(host: str, expected: str) -> None:
    # Not through a server: binding a wildcard address would leave loopback.
    assert _connectable(host) == expected


async def test_client_for_needs_a_started_server() -> None:
    with pytest.raises(RuntimeError):
        client_for(Device())


# -- assert_request_fails ---------------------------------------------------------------------


async def test_assert_request_fails() -> None:
    async with running(Device()) as server, client_for(server) as client:
        exc = await assert_request_fails(client, "set", 11, match=r"11 out of range")
        assert isinstance(exc, FailReply)
        invalid = await assert_request_fails(client, "no-such-request", match="(?i)unknown request")
        assert isinstance(invalid, InvalidReply)
        await assert_request_fails(client, "set", 11, match=re.compile("out of"))
        with pytest.raises(AssertionError, match=r"does not match 'frobnicated'"):
            await assert_request_fails(client, "set", 11, match="frobnicated")
        with pytest.raises(AssertionError, match=r"\?set succeeded"):
            await assert_request_fails(client, "set", 5)


# -- wait_for_sensor --------------------------------------------------------------------------


async def test_wait_for_sensor_value_and_predicate() -> None:
    sensor = Sensor(int, "level", default=4)
    loop = asyncio.get_running_loop()
    assert (await wait_for_sensor(sensor, 4)).value == 4  # already there: at once
    loop.call_later(5, sensor.set_value, 7)
    reading = await wait_for_sensor(sensor, 7, timeout=10)
    assert reading.value == 7
    loop.call_later(1, sensor.set_value, 8, Sensor.Status.WARN)
    reading = await wait_for_sensor(sensor, lambda r: r.status == Sensor.Status.WARN, timeout=10)
    assert (reading.value, reading.status) == (8, Sensor.Status.WARN)


async def test_wait_for_sensor_timeout() -> None:
    sensor = Sensor(int, "level", default=1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError, match=r"'level' did not reach value 2 within 3 s.*value=1"):
        await wait_for_sensor(sensor, 2, timeout=3)
    assert loop.time() - start == pytest.approx(3)
    sensor.set_value(2)  # the observer is gone: nothing happens


async def test_wait_for_sensor_predicate_error_propagates() -> None:
    sensor = Sensor(int, "level", default=1)

    def bad(reading: aiokatcp.Reading[int]) -> bool:
        if reading.value == 2:
            raise ZeroDivisionError("bad predicate")
        return False

    asyncio.get_running_loop().call_later(1, sensor.set_value, 2)
    with pytest.raises(ZeroDivisionError):
        await wait_for_sensor(sensor, bad, timeout=10)


@pytest.mark.real_loop
async def test_wait_for_sensor_updated_from_a_thread() -> None:
    sensor = Sensor(int, "level", default=0)
    waiter = asyncio.ensure_future(wait_for_sensor(sensor, 5, timeout=30))
    await asyncio.sleep(0)
    thread = threading.Thread(target=sensor.set_value, args=(5,))
    thread.start()
    assert (await waiter).value == 5
    thread.join()


async def test_wait_for_mirrored_sensor() -> None:
    async with running(Device()) as server, client_for(server) as client:
        watcher = SensorWatcher(client)
        client.add_sensor_watcher(watcher)
        await watcher.synced.wait()
        await client.request("sensor-sampling", "level", "auto")
        await client.request("set", 9)
        reading = await wait_for_sensor(watcher.sensors["level"], 9, timeout=10)
        assert reading.status == Sensor.Status.NOMINAL


# -- ScriptedPeer / PeerServer ----------------------------------------------------------------


async def test_scripted_peer_checks_lines() -> None:
    async with running(Device()) as server, await ScriptedPeer.connect_to(server) as peer:
        peer.timeout = 5
        await peer.expect_connect()
        lines = await peer.request(b"?set[3] 2")
        assert lines == [b"!set[3] ok"]
        await peer.send(b"?watchdog[4]")
        with pytest.raises(AssertionError, match=r"expected b'!watchdog\[4\] fail', got"):
            await peer.expect(b"!watchdog[4] fail")
        await peer.send(b"?watchdog")
        with pytest.raises(AssertionError, match="expected a match"):
            await peer.expect(re.compile(rb"!watchdog fail"))
        with pytest.raises(TimeoutError, match="no line received within 5 s"):
            await peer.readline()
        with pytest.raises(ValueError, match="not a request"):
            await peer.request(b"!oops")


async def test_peer_server_as_fake_device() -> None:
    async with PeerServer() as device:
        assert device.address == ("127.0.0.1", device.port)
        client = Client(*device.address)
        try:
            peer = await device.accept()
            await client.wait_connected()
            assert client.protocol_flags == frozenset("MIB")
            task = asyncio.create_task(client.request("go", 1))
            await peer.expect(b"?go[1] 1")
            await peer.send(b"#go[1] going", b"!go[1] ok done")
            reply, informs = await task
            assert reply == [b"done"]
            assert [m.arguments for m in informs] == [[b"going"]]
            # reset: the connection drops without a clean close; the client notices
            await peer.reset()
            await client.wait_disconnected()
            again = await device.accept()  # the client reconnects
            await client.wait_connected()
            await again.close()
        finally:
            client.close()
            await client.wait_closed()


async def test_peer_server_accept_timeout() -> None:
    async with PeerServer(timeout=2) as device:
        with pytest.raises(TimeoutError, match="no connection within 2 s"):
            await device.accept()


# -- virtual clock ----------------------------------------------------------------------------


def test_virtual_clock_loop() -> None:
    loop = virtual_clock_loop()
    try:
        start = loop.time()
        loop.run_until_complete(asyncio.sleep(3600))
        assert loop.time() - start == pytest.approx(3600)
    finally:
        loop.close()


def test_virtual_clock_loop_without_async_solipsism(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "async_solipsism", None)
    with pytest.raises(ImportError, match="pip install async-solipsism"):
        virtual_clock_loop()


def test_import_loads_neither_pytest_nor_solipsism() -> None:
    code = (
        "import sys, aiokatcp.testing; "
        "print(sorted(m for m in ('pytest', 'async_solipsism', 'pytest_asyncio') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# -- the pytest plugin ------------------------------------------------------------------------

PLUGIN_INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"


def run_plugin(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeini(PLUGIN_INI)
    return pytester.runpytest_inprocess("-p", "aiokatcp.testing.plugin", "-q", *args)


def test_plugin_fixtures_and_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        import async_solipsism
        from aiokatcp import DeviceServer

        class Dev(DeviceServer):
            VERSION = "d-1"
            BUILD_STATE = "d-1.0"

        @pytest.fixture
        def katcp_device():
            return Dev("127.0.0.1", 0)

        async def test_fixtures(katcp_server, katcp_client, katcp_peer):
            assert katcp_client.is_connected
            assert (await katcp_peer.request(b"?watchdog")) == [b"!watchdog ok"]
            assert not isinstance(asyncio.get_running_loop(), async_solipsism.EventLoop)

        async def test_peer_server(katcp_peer_server):
            assert katcp_peer_server.port != 0

        @pytest.mark.virtual_clock
        async def test_virtual(katcp_client):
            loop = asyncio.get_running_loop()
            assert isinstance(loop, async_solipsism.EventLoop)
            start = loop.time()
            await asyncio.sleep(3600)
            assert loop.time() - start == 3600
        """
    )
    result = run_plugin(pytester)
    result.assert_outcomes(passed=3)


def test_plugin_marker_per_module(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_virtual="""
        import asyncio
        import pytest

        pytestmark = pytest.mark.virtual_clock

        async def test_a():
            assert "solipsism" in type(asyncio.get_running_loop()).__module__

        async def test_b(katcp_peer_server):
            assert "solipsism" in type(asyncio.get_running_loop()).__module__
        """,
        test_real="""
        import asyncio

        async def test_c():
            assert "solipsism" not in type(asyncio.get_running_loop()).__module__
        """,
    )
    run_plugin(pytester).assert_outcomes(passed=3)


def test_plugin_marker_without_async_solipsism(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.virtual_clock\nasync def test_x():\n    pass\n"
    )
    monkeypatch.setitem(sys.modules, "async_solipsism", None)
    result = run_plugin(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*virtual_clock marker*pip install async-solipsism*"])


def test_plugin_needs_katcp_device(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("async def test_x(katcp_server):\n    pass\n")
    result = run_plugin(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs a katcp_device fixture*"])


def test_plugin_yields_to_the_users_loop_factory_hook(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import asyncio

        class MyLoop(asyncio.SelectorEventLoop):
            pass

        def pytest_asyncio_loop_factories(config, item):
            return {"mine": MyLoop}
        """
    )
    pytester.makepyfile(
        """
        import asyncio

        async def test_x():
            assert type(asyncio.get_running_loop()).__name__ == "MyLoop"
        """
    )
    run_plugin(pytester).assert_outcomes(passed=1)


def test_plugin_not_loaded_by_default(pytester: pytest.Pytester) -> None:
    pytester.makeini(PLUGIN_INI)
    pytester.makepyfile("def test_x(katcp_server):\n    pass\n")
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'katcp_server' not found*"])


def test_example_user_tests_run_on_their_own() -> None:
    """examples/user_tests is a user's suite: it needs only aiokatcp, pytest, pytest-asyncio
    and async-solipsism (not our conftest, helpers, hypothesis or pytest-mock)."""
    where = ROOT / "examples" / "user_tests"
    cmd: List[str] = [
        sys.executable,
        "-m",
        "pytest",
        str(where),
        "--rootdir",
        str(where),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
        "-p",
        "no:pytest_mock",
        "-q",
    ]
    proc = subprocess.run(cmd, cwd=where, capture_output=True, text=True, env={"PATH": ""})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b9 passed\b", proc.stdout), proc.stdout
