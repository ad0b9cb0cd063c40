"""Sensor requests for :class:`~aiokatcp.server.DeviceServer` (placeholder).

This mixin will hold ``?sensor-list``, ``?sensor-value``, ``?sensor-sampling``
and ``?sensor-sampling-clear`` and each client's samplers. Until then it only
provides the hooks the server calls.
"""

from __future__ import annotations

from typing import Any


class SensorRequests:
    """Mixin adding the sensor requests to a device server."""

    def _init_sensors(self) -> None:
        """Called once from ``DeviceServer.__init__``."""

    def _sensors_client_closed(self, conn: Any) -> None:
        """Called when a client connection is lost: release its samplers."""
