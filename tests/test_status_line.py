"""The server's one-step ``#sensor-status`` formatter writes what the generic path writes."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from aiokatcp._protocol_flags import ProtocolFlags
from aiokatcp._sensor_wire import forget_plain_name, plain_name, status_args, status_line
from aiokatcp.core import Address, Message, Timestamp
from aiokatcp.sensor import Reading, Sensor


class Colour(enum.Enum):
    RED = 1
    DARK_BLUE = 2


@pytest.mark.parametrize(
    ("stype", "name", "value"),
    [
        (int, "plain", 12345),
        (float, "temp", -2.5e-10),
        (bool, "flag", False),
        (str, "text", ""),  # empty: written as \@
        (str, "text", "two words\tand\\ more"),
        (bytes, "raw", b"\x1b\0\n\r"),
        (Colour, "colour", Colour.DARK_BLUE),
        (Timestamp, "when", Timestamp(1234567890.25)),
        (Address, "addr", Address.parse(b"127.0.0.1:7147")),
        (int, "name with space", 1),
        (int, "back\\slash", 1),
        (int, "µ-unicode", 1),
    ],
)
@pytest.mark.parametrize("status", list(Sensor.Status))
def test_status_line_matches_message(stype: Any, name: str, value: Any, status: Any) -> None:
    sensor = Sensor(stype, name, "a sensor")
    reading = Reading(Timestamp(1700000000.123456), status, value)
    expected = bytes(Message.inform("sensor-status", *status_args(sensor, reading)))
    assert status_line(sensor, reading) == expected
    assert Message.parse(expected).arguments[2] == name.encode("utf-8")


@pytest.mark.parametrize("stype", [int, Timestamp])
def test_status_line_in_milliseconds(stype: Any) -> None:
    # A KATCP v4 device (times in milliseconds) goes through the generic path.
    millis = ProtocolFlags(4, 0)
    sensor = Sensor(stype, "when", "a sensor")
    reading = Reading(Timestamp(1700000000.123456), Sensor.Status.NOMINAL, stype(17))
    expected = bytes(Message.inform("sensor-status", *status_args(sensor, reading, millis)))
    assert status_line(sensor, reading, millis) == expected
    assert expected.startswith(b"#sensor-status 1700000000123 1 when nominal")


@pytest.mark.parametrize("timestamp", [1700000000.123456, Timestamp(1700000000.123456), 0.1 + 0.2])
def test_status_line_float_and_timestamp_timestamps(timestamp: float) -> None:
    sensor = Sensor(float, "t", "a sensor")
    reading = Reading(timestamp, Sensor.Status.NOMINAL, 1.5)
    expected = bytes(Message.inform("sensor-status", *status_args(sensor, reading)))
    assert status_line(sensor, reading) == expected
    assert expected.split()[1] == float.__repr__(float(timestamp)).encode()


def test_remembered_names() -> None:
    assert plain_name("plain.name") == b"plain.name"
    assert plain_name("plain.name") == b"plain.name"  # (remembered)
    assert plain_name("two words") is None
    forget_plain_name("plain.name")
    forget_plain_name("never-seen")  # no error
    sensor = Sensor(int, "plain.name", "a sensor")
    reading = Reading(Timestamp(1.5), Sensor.Status.NOMINAL, 3)
    assert status_line(sensor, reading) == b"#sensor-status 1.5 1 plain.name nominal 3\n"
