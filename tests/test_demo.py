"""The examples owned by the client side: the demo, the example client and the sensor mirror.

The example modules are imported by path (``examples/`` is not a package).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import os
import sys
from types import ModuleType
from typing import Any, AsyncIterator

import pytest

import aiokatcp
from aiokatcp.server import DeviceServer
from aiokatcp.testing import client_for, running

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load_example(name: str) -> ModuleType:
    path = os.path.join(EXAMPLES, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RemoteDevice(DeviceServer):
    VERSION = "remote-1.0"
    BUILD_STATE = "remote-1.0.0"
    AUTO_INTERFACE_CHANGED = True  # sensor-set changes are announced

    def __init__(self, port: int = 0) -> None:
        super().__init__("127.0.0.1", port)
        nominal = aiokatcp.Sensor.Status.NOMINAL
        self.sensors.add(aiokatcp.Sensor(int, "counter", "A counter", "count", 1, nominal))
        self.sensors.add(aiokatcp.Sensor(float, "temp", "Temperature", "degC", 20.0, nominal))


@pytest.fixture
async def remote() -> AsyncIterator[RemoteDevice]:
    async with running(RemoteDevice()) as server:
        yield server


async def wait_until(predicate: Any, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition never became true"
        await asyncio.sleep(0.05)


async def test_mirror_sensors(remote: RemoteDevice) -> None:
    mirror_module = load_example("mirror_sensors")
    remote_port = remote.port
    mirror = mirror_module.MirrorServer("127.0.0.1", 0, "127.0.0.1", remote_port, "dev1.")
    async with running(mirror):
        await mirror.watcher.synced.wait()
        assert set(mirror.sensors) == {"dev1.counter", "dev1.temp"}
        async with client_for(mirror) as client:
            watcher = aiokatcp.SensorWatcher(client)
            client.add_sensor_watcher(watcher)
            await watcher.synced.wait()
            assert watcher.sensors["dev1.temp"].units == "degC"
            assert await client.sensor_value("dev1.counter") == 1
            reply, _ = await client.request("remote-connected")
            assert reply == [b"1"]
            # Updates flow through the proxy.
            remote.sensors["counter"].value = 5
            await wait_until(lambda: watcher.sensors["dev1.counter"].value == 5)
            # A sensor added to the remote device appears on the proxy.
            remote.sensors.add(aiokatcp.Sensor(bool, "flag", "A flag", default=True))
            await wait_until(lambda: "dev1.flag" in watcher.sensors)
            # The remote device goes away: the copies are unreachable, not gone.
            await remote.stop()
            await wait_until(
                lambda: watcher.sensors["dev1.counter"].status is aiokatcp.Sensor.Status.UNREACHABLE
            )
            assert watcher.sensors["dev1.counter"].value == 5
            reply, _ = await client.request("remote-connected")
            assert reply == [b"0"]
            # It comes back: the proxy resynchronises by itself.
            revived = RemoteDevice(remote_port)
            revived.sensors["counter"].value = 7
            async with running(revived):
                await wait_until(lambda: watcher.sensors["dev1.counter"].value == 7, 120)


async def test_example_client(remote: RemoteDevice) -> None:
    example = load_example("example_client")

    async def change() -> None:
        await asyncio.sleep(0.5)
        remote.sensors["counter"].value = 2

    task = asyncio.create_task(change())
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        await example.main("127.0.0.1", remote.port, 2.0)
    await task
    text = out.getvalue()
    assert "?sensor-list:" in text
    assert "counter [integer] = 1" in text
    assert "counter = 2 (nominal)" in text


async def test_demo_in_process() -> None:
    """The demo's whole script, on the virtual clock."""
    demo = load_example("demo")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        await demo.main(2.0)
    text = out.getvalue()
    for expected in [
        "?frequency ",
        "temperature        float (10.0 50.0 0.0 70.0) [degC]",
        "?frequency 2500000.0 -> 2500000.0 Hz",
        "?waveform square     -> Waveform.SQUARE",
        "FailReply: frequency",
        "#calibrate step 2 2",
        "Synchronised: 10 sensors mirrored",
        "temperature    = ",
        "Client and device shut down cleanly",
    ]:
        assert expected in text


@pytest.mark.real_loop
async def test_demo_subprocess() -> None:
    """``python examples/demo.py`` as the README runs it: real sockets, exit status 0."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        os.path.join(EXAMPLES, "demo.py"),
        "--seconds",
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, stderr.decode()
    assert b"Client and device shut down cleanly" in stdout
    assert b"Traceback" not in stderr
