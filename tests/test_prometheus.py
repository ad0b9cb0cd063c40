"""aiokatcp.prometheus: scrape the endpoint over HTTP on 127.0.0.1 and check the metrics."""

from __future__ import annotations

import asyncio
import enum
import sys
from typing import Dict, Tuple

import pytest

import aiokatcp
from aiokatcp.server import DeviceServer

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from aiokatcp.prometheus import Exporter, metric_name  # noqa: E402


class Mode(enum.Enum):
    IDLE = 1
    OBSERVING = 2


class Telescope(DeviceServer):
    VERSION = "scope-1.0"
    BUILD_STATE = "scope-1.0.0"

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0)
        self.sensors.add(aiokatcp.Sensor(float, "dish.temp", "Dish temperature", "degC"))
        self.sensors.add(aiokatcp.Sensor(int, "scan-count", "Scans so far", default=4))
        self.sensors.add(aiokatcp.Sensor(bool, "ready", "Ready to observe", default=True))
        self.sensors.add(aiokatcp.Sensor(Mode, "mode", "Operating mode", default=Mode.IDLE))
        self.sensors.add(aiokatcp.Sensor(str, "note", "A note", default="hi"))
        for name in ("scan-count", "ready", "mode", "note"):
            sensor = self.sensors[name]
            sensor.value = sensor.value  # a reading with status nominal


async def scrape(host: str, port: int, path: str = "/metrics") -> Tuple[int, str]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def samples(text: str) -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_metric_name() -> None:
    assert metric_name("katcp", "dish.temp") == "katcp_dish_temp"
    assert metric_name("", "3d-scan") == "3d_scan"
    assert metric_name("my-ns", "a b") == "my_ns_a_b"


@pytest.mark.real_loop
async def test_scrape_device_sensors() -> None:
    server = Telescope()
    await server.start()
    server.sensors["dish.temp"].set_value(21.5, status=aiokatcp.Sensor.Status.WARN)
    exporter = Exporter(server.sensors)
    host, port = await exporter.start("127.0.0.1", 0)
    try:
        code, text = await scrape(host, port)
        assert code == 200
        got = samples(text)
        assert got["katcp_dish_temp", (("sensor", "dish.temp"),)] == 21.5
        assert got["katcp_scan_count", (("sensor", "scan-count"),)] == 4
        assert got["katcp_ready", (("sensor", "ready"),)] == 1
        assert got["katcp_mode", (("katcp_mode", "idle"), ("sensor", "mode"))] == 1
        assert got["katcp_mode", (("katcp_mode", "observing"), ("sensor", "mode"))] == 0
        status = (("sensor", "dish.temp"), ("status", "warn"))
        assert got["katcp_dish_temp_status", status] == 2
        assert got["katcp_note_status", (("sensor", "note"), ("status", "nominal"))] == 1
        assert not any(name == "katcp_note" for name, _ in got)  # strings: status only
        assert "Dish temperature (degC)" in text

        # Read at each scrape: a change and an unknown status show up.
        server.sensors["mode"].value = Mode.OBSERVING
        server.sensors["dish.temp"].set_value(0.0, status=aiokatcp.Sensor.Status.UNKNOWN)
        got = samples((await scrape(host, port, "/"))[1])
        assert got["katcp_mode", (("katcp_mode", "observing"), ("sensor", "mode"))] == 1
        assert ("katcp_dish_temp", (("sensor", "dish.temp"),)) not in got
        assert got["katcp_dish_temp_status", (("sensor", "dish.temp"), ("status", "unknown"))] == 0

        assert (await scrape(host, port, "/other"))[0] == 404
    finally:
        exporter.close()
        await exporter.wait_closed()
        await server.stop()


@pytest.mark.real_loop
async def test_scrape_watcher_mirror() -> None:
    """A SensorWatcher's mirror of a remote device, exported by the client side."""
    server = Telescope()
    await server.start()
    client = aiokatcp.Client("127.0.0.1", server.sockets[0].getsockname()[1])
    watcher = aiokatcp.SensorWatcher(client)
    client.add_sensor_watcher(watcher)
    exporter = Exporter(watcher.sensors, namespace="remote")
    try:
        await asyncio.wait_for(watcher.synced.wait(), 30)
        host, port = await exporter.start()
        got = samples((await scrape(host, port))[1])
        assert got["remote_scan_count", (("sensor", "scan-count"),)] == 4
        assert got["remote_mode", (("remote_mode", "idle"), ("sensor", "mode"))] == 1
    finally:
        exporter.close()
        client.close()
        await client.wait_closed()
        await server.stop()


@pytest.mark.real_loop
async def test_katcpcmd_export() -> None:
    """``katcpcmd export ADDRESS --port 0`` says where it serves; a scrape sees the device."""
    server = Telescope()
    await server.start()
    proc = await asyncio.create_subprocess_exec(
        *[
            sys.executable,
            "-m",
            "aiokatcp",
            "export",
            f"127.0.0.1:{server.sockets[0].getsockname()[1]}",
            "--port",
            "0",
        ],
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
        url = line.rsplit(" ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        port = int(url.split(":")[2].split("/")[0])
        got = samples((await scrape("127.0.0.1", port))[1])  # (it serves once synced)
        assert got["katcp_scan_count", (("sensor", "scan-count"),)] == 4
    finally:
        proc.terminate()
        await proc.wait()
        await server.stop()


def test_core_does_not_need_prometheus_client() -> None:
    import subprocess

    code = (
        "import sys; sys.modules['prometheus_client'] = None; "
        "import aiokatcp, aiokatcp.prometheus, aiokatcp.tools.katcpcmd"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_silent_scraper_is_dropped() -> None:
    """(Virtual clock.) A connection that never sends its request is closed after 10 s."""
    exporter = Exporter(aiokatcp.SensorSet())
    host, port = await exporter.start("127.0.0.1", 8000)
    loop = asyncio.get_running_loop()
    start = loop.time()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /metrics HTTP/1.1\r\n")  # never finished
    assert await reader.read() == b""
    assert loop.time() - start == pytest.approx(10, abs=0.1)
    writer.close()
    exporter.close()
    await exporter.wait_closed()
