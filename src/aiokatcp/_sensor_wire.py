"""The sensor wire format, written and parsed in one place.

Pure module (no asyncio), shared by the server (which writes
``#sensor-list``, ``#sensor-value`` and ``#sensor-status``), the client's
``sensor_value``/``sensor_reading`` and the sensor watcher (which parse them):

* ``#sensor-list <name> <description> <units> <type> <param>*``
* ``#sensor-value`` / ``#sensor-status``: ``<timestamp> <n> (<name> <status> <value>){n}``
  (the server always writes ``n = 1``; a client accepts any ``n``).
"""

from __future__ import annotations

import enum
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ._dialect import encode_time
from ._lru import Lru
from ._message import Message, inform_bytes, is_plain_argument
from ._protocol_flags import ProtocolFlags
from ._typeinfo import encode, get_decoder
from ._values import Address, Timestamp
from .exceptions import FailReply
from .sensor import Reading, Sensor

__all__ = [
    "SENSOR_TYPES",
    "STATUS_FROM_WIRE",
    "SensorInfo",
    "decode_sensor_value",
    "forget_plain_name",
    "parse_sensor_list",
    "parse_sensor_status",
    "plain_name",
    "sensor_list_args",
    "status_args",
    "status_line",
    "value_type",
]

_ONE = b"1"
#: Python type of each KATCP sensor type name (what a client decodes values as).
SENSOR_TYPES: Dict[str, type] = {
    "integer": int,
    "float": float,
    "boolean": bool,
    "timestamp": Timestamp,
    "discrete": enum.Enum,
    "address": Address,
    "string": bytes,
    "lru": Lru,
}
#: Status by its wire name (``nominal`` -> ``Sensor.Status.NOMINAL``).
STATUS_FROM_WIRE: Dict[bytes, Sensor.Status] = {
    status.name.lower().encode(): status for status in Sensor.Status
}
# And back (what ``encode(status)`` gives, without its per-call type dispatch).
_STATUS_TO_WIRE: Dict[Sensor.Status, bytes] = {
    status: wire for wire, status in STATUS_FROM_WIRE.items()
}
_STATUS_TYPE = Sensor.Status
#: What ``#sensor-list`` says about one sensor: description, units, type name, parameters.
SensorInfo = Tuple[str, str, str, Tuple[bytes, ...]]
_decode_timestamp = get_decoder(Timestamp)


# -- writing (server) ------------------------------------------------------------------------


def status_args(
    sensor: Sensor[Any], reading: Reading[Any], millis: Optional[ProtocolFlags] = None
) -> List[bytes]:
    """Arguments of ``#sensor-status``/``#sensor-value``: ``<ts> 1 <name> <status> <value>``.

    `millis` is the protocol of a device that writes times in milliseconds
    (KATCP v4): the timestamp, and the value of a ``timestamp`` sensor, are
    then whole milliseconds. ``None`` (v5) keeps the hot path free of it.
    """
    if millis is not None:
        value = reading.value
        return [
            encode_time(millis, reading.timestamp),
            _ONE,
            sensor.name.encode("utf-8"),
            encode(reading.status),
            encode_time(millis, value) if sensor.type_name == "timestamp" else encode(value),
        ]
    status = reading.status
    return [
        float.__repr__(reading.timestamp).encode("ascii"),
        _ONE,
        sensor.name.encode("utf-8"),
        _STATUS_TO_WIRE[status] if type(status) is _STATUS_TYPE else encode(status),
        encode(reading.value),
    ]


#: Sensor names that go on the wire as they are, with their bytes (the formatting of
#: every ``#sensor-status`` line starts from the name). Bounded: past the bound, names
#: are simply encoded each time.
_plain_names: Dict[str, bytes] = {}
_PLAIN_NAMES_MAX = 100_000
#: Value types whose encoding is always a plain argument (digits, sign, point, exponent,
#: ``inf``/``nan``).
_PLAIN_TYPES = frozenset({int, float})


def plain_name(name: str) -> Optional[bytes]:
    """The wire bytes of sensor name `name` if it needs no escaping (remembered), else None.

    The server calls it when a sensor is added, so that formatting its first
    ``#sensor-status`` (thousands at once in a bulk subscription) finds it ready.
    """
    raw = _plain_names.get(name)
    if raw is None:
        raw = name.encode("utf-8")
        if not is_plain_argument(raw):
            return None
        if len(_plain_names) < _PLAIN_NAMES_MAX:
            _plain_names[name] = raw
    return raw


def forget_plain_name(name: str) -> None:
    """Drop `name` from the names :func:`plain_name` remembers (its sensor left a server)."""
    _plain_names.pop(name, None)


def status_line(
    sensor: Sensor[Any], reading: Reading[Any], millis: Optional[ProtocolFlags] = None
) -> bytes:
    """The ``#sensor-status`` line of `reading` (``Message.inform`` of :func:`status_args`).

    Formatted in one step when nothing needs escaping (the common case: the
    server formats one line per reading, for every subscribed sensor).
    `millis` as for :func:`status_args`.
    """
    if millis is not None:
        return inform_bytes("sensor-status", None, status_args(sensor, reading, millis))
    name = _plain_names.get(sensor.name) or plain_name(sensor.name)
    if name is None:
        return inform_bytes("sensor-status", None, status_args(sensor, reading))
    status = reading.status
    raw_value = reading.value
    value = encode(raw_value)
    # (An int's or a float's encoding never needs escaping: no search for those.)
    plain = type(raw_value) in _PLAIN_TYPES or is_plain_argument(value)
    if type(status) is _STATUS_TYPE and plain:
        timestamp = reading.timestamp
        if type(timestamp) is float:  # (%r is float's repr, in one step)
            return b"#sensor-status %r 1 %s %s %s\n" % (
                timestamp,
                name,
                _STATUS_TO_WIRE[status],
                value,
            )
        raw = float.__repr__(timestamp).encode("ascii")
        return b"#sensor-status %s 1 %s %s %s\n" % (raw, name, _STATUS_TO_WIRE[status], value)
    return inform_bytes("sensor-status", None, status_args(sensor, reading))


def sensor_list_args(sensor: Sensor[Any]) -> Tuple[Any, ...]:
    """Arguments of one ``#sensor-list`` inform."""
    return (sensor.name, sensor.description, sensor.units, sensor.type_name, *sensor.params)


# -- parsing (client) ------------------------------------------------------------------------


def parse_sensor_list(
    informs: Sequence[Message], warn: Callable[[str, Message], None]
) -> Dict[str, SensorInfo]:
    """Map name -> :data:`SensorInfo`, in server order; `warn` is told of bad informs."""
    listing: Dict[str, SensorInfo] = {}
    for inform in informs:
        args = inform.arguments
        if len(args) < 4:
            warn("Ignoring malformed #sensor-list: %s", inform)
            continue
        try:
            name = args[0].decode("utf-8")
        except UnicodeDecodeError:
            warn("Ignoring #sensor-list with a non-UTF-8 name: %s", inform)
            continue
        listing[name] = (
            args[1].decode("utf-8", errors="replace"),
            args[2].decode("utf-8", errors="replace"),
            args[3].decode("utf-8", errors="replace"),
            tuple(args[4:]),
        )
    return listing


def parse_sensor_status(
    args: Sequence[bytes],
) -> Optional[Tuple[float, List[Tuple[bytes, Sensor.Status, bytes]]]]:
    """``(timestamp, [(raw name, status, value)])`` of a ``#sensor-status``; ``None`` if bad.

    Times are seconds: the client converts a v4 device's milliseconds at the wire.
    """
    try:
        timestamp = float(args[0])
        count = int(args[1])
        if count < 0 or len(args) != 2 + 3 * count:
            return None
        return timestamp, [
            (args[i], STATUS_FROM_WIRE[args[i + 1]], args[i + 2]) for i in range(2, len(args), 3)
        ]
    except (ValueError, IndexError, KeyError):
        return None


def _expect_one(informs: Sequence[Message]) -> None:
    if len(informs) != 1:  # (aiokatcp 2.x's text, e.g. for a /regex/ name)
        raise FailReply(f"Server returned {len(informs)} sensors, but only 1 expected")


def value_type(sensor_list_informs: Sequence[Message], name: str) -> type:
    """The Python type to decode a sensor's value as, from its ``#sensor-list`` inform.

    Discrete and string values stay ``bytes``.
    """
    _expect_one(sensor_list_informs)
    if len(sensor_list_informs[0].arguments) < 4:
        raise FailReply(f"unexpected ?sensor-list reply for {name!r}")
    type_name = sensor_list_informs[0].arguments[3].decode("utf-8", errors="replace")
    stype = SENSOR_TYPES.get(type_name, bytes)
    return bytes if stype is enum.Enum else stype


def decode_sensor_value(informs: Sequence[Message], sensor_type: Any) -> Reading[Any]:
    """Decode the single ``#sensor-value`` inform expected in `informs`."""
    _expect_one(informs)
    args = informs[0].arguments
    if len(args) != 5:
        raise ValueError(f"malformed #sensor-value inform: {informs[0]}")
    timestamp = _decode_timestamp(args[0])
    status = STATUS_FROM_WIRE.get(args[3])
    if status is None:
        raise ValueError(f"unknown sensor status in #sensor-value: {informs[0]}")
    value = get_decoder(sensor_type)(args[4])
    return Reading(timestamp, status, value)
