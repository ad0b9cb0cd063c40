"""Serve a :class:`~aiokatcp.sensor.SensorSet` on a Prometheus HTTP endpoint.

Needs ``prometheus-client`` (``pip install 'aiokatcp[prometheus]'``); it is
imported when an :class:`Exporter` is made, so the rest of aiokatcp never
needs it. The sensors are read when Prometheus scrapes (no copies, no
observers), and the endpoint runs on the event loop, so a device's own
sensors (``server.sensors``) or a :class:`~aiokatcp.client.SensorWatcher`'s
mirror of a remote device (``watcher.sensors``) are served as they are.

Each sensor ``name`` becomes metrics named ``<namespace>_<name>`` with every
character other than letters, digits and ``_`` replaced by ``_``, and a
``sensor`` label holding the original name:

* ``int``, ``float`` (and ``Timestamp``) and ``bool`` sensors: a gauge with the
  value (booleans as 0/1), present only while the status has a valid value
  (``nominal``, ``warn`` or ``error``);
* discrete (enum) sensors: an enum-style state set, one sample per possible
  value, 1 for the current one;
* every sensor: ``<name>_status``, a gauge with the status code
  (0 unknown, 1 nominal, 2 warn, 3 error, 4 failure, 5 unreachable, 6 inactive)
  and the status word in a ``status`` label.

Other types (strings, addresses) get only the status gauge.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple

from aiokatcp._compat import timeout
from aiokatcp.core import encode
from aiokatcp.sensor import Sensor, SensorSet

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

__all__ = ["Exporter", "metric_name"]

logger = logging.getLogger(__name__)
_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(namespace: str, sensor_name: str) -> str:
    """The Prometheus metric name for a sensor (``ns_sensor_name``, invalid characters ``_``)."""
    name = _INVALID.sub("_", sensor_name)
    return f"{_INVALID.sub('_', namespace)}_{name}" if namespace else name


def _kind(sensor: Sensor[Any]) -> Optional[str]:
    stype = sensor.stype
    if isinstance(stype, type) and issubclass(stype, enum.Enum):
        return "enum"
    if isinstance(stype, type) and issubclass(stype, (bool, int, float)):
        return "gauge"
    return None


class _Collector:
    """A prometheus_client collector that reads a SensorSet at each scrape."""

    def __init__(self, sensors: SensorSet, namespace: str) -> None:
        self.sensors = sensors
        self.namespace = namespace

    def describe(self) -> List[Metric]:
        return []  # dynamic: the sensor set can change between scrapes

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily, StateSetMetricFamily

        families: Dict[str, Any] = {}
        kinds: Dict[str, str] = {}
        for sensor in list(self.sensors.values()):
            base = metric_name(self.namespace, sensor.name)
            kind = _kind(sensor)
            reading = sensor.reading
            help_text = sensor.description + (f" ({sensor.units})" if sensor.units else "")
            status_name = base + "_status"
            family = families.get(status_name)
            if family is None:
                family = GaugeMetricFamily(
                    status_name,
                    f"KATCP status of {sensor.name} (0 unknown ... 6 inactive)",
                    labels=["sensor", "status"],
                )
                families[status_name] = family
            family.add_metric([sensor.name, reading.status.name.lower()], int(reading.status))
            if kind is None:
                continue
            if kinds.setdefault(base, kind) != kind:
                logger.warning(
                    "Not exporting %s: metric name %s is already taken", sensor.name, base
                )
                continue
            if kind == "gauge":
                family = families.get(base)
                if family is None:
                    family = families[base] = GaugeMetricFamily(base, help_text, labels=["sensor"])
                if reading.status.valid_value():
                    family.add_metric([sensor.name], float(reading.value))
            else:
                family = families.get(base)
                if family is None:
                    family = families[base] = StateSetMetricFamily(
                        base, help_text, labels=["sensor"]
                    )
                current = reading.value if reading.status.valid_value() else None
                states = {
                    encode(member).decode("utf-8", "replace"): member == current
                    for member in sensor.stype
                }
                family.add_metric([sensor.name], states)
        yield from families.values()


class Exporter:
    """Serve the sensors of a :class:`~aiokatcp.sensor.SensorSet` to Prometheus.

    Parameters
    ----------
    sensors
        The sensors to serve, read at each scrape (e.g. ``server.sensors`` or
        ``watcher.sensors``); sensors added or removed later are followed.
    namespace
        Prefix of every metric name (default ``katcp``; empty for none).
    registry
        A ``prometheus_client.CollectorRegistry`` to register with (default:
        a new one, holding only these sensors).

    Raises
    ------
    ImportError
        if ``prometheus-client`` is not installed
    """

    def __init__(
        self,
        sensors: SensorSet,
        *,
        namespace: str = "katcp",
        registry: Optional[CollectorRegistry] = None,
    ) -> None:
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry(auto_describe=False) if registry is None else registry
        self._collector = _Collector(sensors, namespace)
        self.registry.register(self._collector)
        self._server: Optional[asyncio.AbstractServer] = None
        #: Seconds a scraper may take to send its request before it is dropped.
        self.request_timeout = 10.0

    def generate(self) -> bytes:
        """The current metrics in the Prometheus text format (what a scrape returns)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Tuple[str, int]:
        """Listen for scrapes on ``http://host:port/metrics``; return the bound address.

        Port 0 picks a free port.
        """
        if self._server is not None:
            raise RuntimeError("Exporter already started")
        self._server = await asyncio.start_server(self._handle, host, port)
        sockname = self._server.sockets[0].getsockname()
        return sockname[0], sockname[1]

    def close(self) -> None:
        """Stop listening (connections being served finish their reply)."""
        if self._server is not None:
            self._server.close()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with timeout(self.request_timeout):
                head = await reader.readuntil(b"\r\n\r\n")
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            asyncio.TimeoutError,
            ConnectionError,
        ):
            writer.close()  # a silent, incomplete or over-long request is dropped
            return
        request_line = head.split(b"\r\n", 1)[0].split()
        if len(request_line) != 3 or request_line[0] not in (b"GET", b"HEAD"):
            status, body, ctype = b"405 Method Not Allowed", b"only GET\n", b"text/plain"
        elif request_line[1].split(b"?", 1)[0] not in (b"/", b"/metrics"):
            status, body, ctype = b"404 Not Found", b"see /metrics\n", b"text/plain"
        else:
            from prometheus_client import CONTENT_TYPE_LATEST

            status, body = b"200 OK", self.generate()
            ctype = CONTENT_TYPE_LATEST.encode()
        writer.write(
            b"HTTP/1.1 "
            + status
            + b"\r\nContent-Type: "
            + ctype
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + (body if request_line[:1] != [b"HEAD"] else b"")
        )
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()
