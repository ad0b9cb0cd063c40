"""The KATCP v4 dialect at the wire: time units, gates, connect informs, version detection.

Pure module: no asyncio, no I/O. The server and the client keep working in
seconds and in v5 terms; these functions translate messages at the wire for a
device whose :class:`~._protocol_flags.ProtocolFlags` says otherwise. For a v5
dialect every conversion returns its input unchanged (same object), so a
device or client that does not opt in behaves exactly as before.

What differs (KATCP spec Rev 4 vs Rev 5, and katcp-python 0.9.3's v4 mode as
recorded in ``tests/data/katcp_v4_server_v4.txt``):

- v4 times are milliseconds: the timestamp of ``#sensor-status``,
  ``#sensor-value`` and ``#log``, values of ``timestamp`` sensors, and the
  ``period`` (also ``event-rate``/``differential-rate`` intervals) of
  ``?sensor-sampling`` and its reply. We write whole milliseconds truncated
  toward zero, as katcp-python does (``1700000000123``), but of the decimal
  value (``repr``) of the float rather than of ``seconds * 1000``: katcp-python
  writes 1092452754.432 s as ``1092452754431`` because the product is
  1092452754431.9998; we write ``1092452754432``, so ms -> s -> ms is exact.
- v4 connects with ``#version`` and ``#build-state`` instead of
  ``#version-connect``, and has no ``?version-list``.
- ``event-rate`` and ``differential-rate`` do not exist in v4.
- Flag gates: ``B`` bulk ``?sensor-sampling``, ``T`` ``?request-timeout-hint``,
  ``I`` message ids.

Matching replies without message ids (FIFO per request name, with tombstones
for abandoned requests) is not here: :mod:`._client_requests` already does it.
"""

from __future__ import annotations

import decimal
import enum
import math
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

from ._message import Message, request_bytes
from ._protocol_flags import ProtocolFlags
from ._typeinfo import encode, get_decoder
from .exceptions import ProtocolError

__all__ = [
    "ASSUMED_PROTOCOL",
    "CONNECT_INFORMS",
    "ClientTimes",
    "DetectResult",
    "VersionDetector",
    "VersionInfo",
    "bulk_sampling_error",
    "convert_seconds",
    "decode_time",
    "encode_time",
    "from_wire",
    "reply_mid",
    "request_available",
    "sampling_params_to_wire",
    "sends_version_connect",
    "strategy_allowed",
    "strategy_error",
    "timestamp_sensor_name",
    "to_wire",
    "uses_milliseconds",
    "v4_connect_informs",
]

#: What a client assumes about a device that announced nothing (yet): v5 without
#: flags, i.e. seconds, no message ids, no bulk sampling (as the spec allows).
ASSUMED_PROTOCOL = ProtocolFlags(5, 0)

_decode_float = get_decoder(float)

# -- time units ------------------------------------------------------------------------------


def uses_milliseconds(protocol: ProtocolFlags) -> bool:
    """Whether times are milliseconds on the wire (major version 4 and older)."""
    return protocol.major < 5


def convert_seconds(protocol: ProtocolFlags, seconds: float) -> float:
    """A time in seconds in the device's units (katcp-python's ``convert_seconds``).

    v5 and later: unchanged; v4: milliseconds; before v4: whole milliseconds
    (an ``int``, truncated), as katcp-python 0.9.3.
    """
    if protocol.major >= 5:
        return seconds
    if protocol.major == 4:
        return seconds * 1000.0
    return _whole_millis(seconds)


def _whole_millis(seconds: float) -> int:
    """Whole milliseconds of `seconds`, truncated toward zero, computed on its decimal form.

    ``int(seconds * 1000)`` is off by one for about 0.6 % of timestamps
    (the product lands just below the integer); shifting the shortest decimal
    representation is exact. `seconds` must be finite.
    """
    return int(decimal.Decimal(repr(float(seconds))).scaleb(3))


def encode_time(protocol: ProtocolFlags, seconds: float) -> bytes:
    """Encode a time (seconds) for the wire: ``repr`` in v5, whole ms in v4."""
    if not uses_milliseconds(protocol) or not math.isfinite(seconds):
        return encode(float(seconds))
    return b"%d" % _whole_millis(seconds)


def decode_time(protocol: ProtocolFlags, raw: bytes) -> float:
    """Decode a wire time to seconds.

    Raises
    ------
    ValueError
        if `raw` is not a number
    """
    value: float = _decode_float(raw)
    return value / 1000.0 if uses_milliseconds(protocol) else value


#: Index of the timestamp argument of each timestamped inform.
_INFORM_TIME_ARG = {"sensor-status": 0, "sensor-value": 0, "log": 1}
#: Indices of the time parameters of each sampling strategy.
_STRATEGY_TIME_PARAMS: Dict[bytes, Tuple[int, ...]] = {
    b"period": (0,),
    b"event-rate": (0, 1),
    b"differential-rate": (1, 2),
}


def _convert_arg(arg: bytes, to_device: bool) -> bytes:
    """One time argument in the other unit; left alone if it is not a number.

    Leaving a bad number untouched lets the handler that decodes it give its
    usual clear error rather than a conversion error here.
    """
    try:
        value = _decode_float(arg)
    except ValueError:
        return arg
    if not to_device:
        return encode(value / 1000.0)
    return b"%d" % _whole_millis(value) if math.isfinite(value) else arg


def _convert(
    protocol: ProtocolFlags,
    msg: Message,
    to_device: bool,
    is_timestamp_sensor: Optional[Callable[[bytes], bool]],
) -> Message:
    if not uses_milliseconds(protocol):
        return msg
    args = list(msg.arguments)
    changed: List[int] = []
    if msg.mtype == Message.Type.INFORM and msg.name in _INFORM_TIME_ARG:
        index = _INFORM_TIME_ARG[msg.name]
        changed.append(index)
        if msg.name != "log" and is_timestamp_sensor is not None:
            # <timestamp> <n> then (name, status, value) triples
            for pos in range(2, len(args) - 2, 3):
                if is_timestamp_sensor(args[pos]):
                    changed.append(pos + 2)
    elif msg.name == "sensor-sampling":
        if msg.mtype == Message.Type.REQUEST:
            start = 1  # <names> <strategy> <params...>
        elif msg.mtype == Message.Type.REPLY and args[:1] == [Message.OK]:
            start = 2  # ok <names> <strategy> <params...>
        else:
            return msg
        if len(args) > start:
            params = _STRATEGY_TIME_PARAMS.get(args[start], ())
            changed.extend(start + 1 + i for i in params)
    changed = [i for i in changed if i < len(args)]
    if not changed:
        return msg
    for i in changed:
        args[i] = _convert_arg(args[i], to_device)
    return Message(msg.mtype, msg.name, *args, mid=msg.mid)


def sampling_params_to_wire(protocol: ProtocolFlags, params: Sequence[bytes]) -> List[bytes]:
    """``<strategy> <params...>`` of a ``?sensor-sampling`` reply, times in the device's units.

    The server's handler builds its reply in seconds; a v4 device echoes
    whole milliseconds (``period 0.2`` -> ``period 200``).
    """
    out = list(params)
    if not uses_milliseconds(protocol) or not out:
        return out
    for i in _STRATEGY_TIME_PARAMS.get(out[0], ()):
        if i + 1 < len(out):
            out[i + 1] = _convert_arg(out[i + 1], True)
    return out


def timestamp_sensor_name(msg: Message) -> Optional[bytes]:
    """The sensor name if `msg` is a ``#sensor-list`` inform of a ``timestamp`` sensor.

    A client learns from these which sensors' values are times (so that it
    can build the `is_timestamp_sensor` test of :func:`from_wire`).
    """
    args = msg.arguments
    if (
        msg.mtype == Message.Type.INFORM
        and msg.name == "sensor-list"
        and len(args) >= 4
        and args[3] == b"timestamp"
    ):
        return args[0]
    return None


def to_wire(
    protocol: ProtocolFlags,
    msg: Message,
    *,
    is_timestamp_sensor: Optional[Callable[[bytes], bool]] = None,
) -> Message:
    """Convert a message we are about to send from seconds to the device's units.

    Covers the timestamps of ``#sensor-status``/``#sensor-value``/``#log``
    (server side), the time parameters of ``?sensor-sampling`` (client side)
    and of its ``ok`` reply (server side). `is_timestamp_sensor` tells which
    sensor names carry ``timestamp`` values, whose values are converted too.
    For a v5 protocol `msg` itself is returned.
    """
    return _convert(protocol, msg, True, is_timestamp_sensor)


def from_wire(
    protocol: ProtocolFlags,
    msg: Message,
    *,
    is_timestamp_sensor: Optional[Callable[[bytes], bool]] = None,
) -> Message:
    """Convert a received message from the device's units to seconds (inverse of :func:`to_wire`).

    Arguments that are not numbers are left alone, so the code that decodes
    them reports the error. For a v5 protocol `msg` itself is returned.
    """
    return _convert(protocol, msg, False, is_timestamp_sensor)


class ClientTimes:
    """A client's time conversion for one connection to a device that uses milliseconds.

    Every message from the device passes :meth:`incoming` exactly once (so
    each time is divided by 1000 exactly once, whatever path reads it:
    ``sensor_reading``, the watcher, ``#log``); requests are written with
    :meth:`request_bytes`. The names of ``timestamp`` sensors are learnt from
    ``#sensor-list`` informs as they pass, so that their values are converted too.
    """

    __slots__ = ("_timestamp_sensors", "protocol")

    def __init__(self, protocol: ProtocolFlags) -> None:
        self.protocol = protocol
        self._timestamp_sensors: Set[bytes] = set()

    def is_timestamp_sensor(self, name: bytes) -> bool:
        """Whether a ``#sensor-list`` seen on this connection said `name` is a timestamp sensor."""
        return name in self._timestamp_sensors

    def incoming(self, msg: Message) -> Message:
        """`msg` with its times in seconds."""
        name = timestamp_sensor_name(msg)
        if name is not None:
            self._timestamp_sensors.add(name)
        return from_wire(self.protocol, msg, is_timestamp_sensor=self.is_timestamp_sensor)

    def request_bytes(self, name: str, mid: Optional[int], args: Tuple[Any, ...]) -> bytes:
        """The wire form of a request, times (``?sensor-sampling`` periods) in milliseconds."""
        if name != "sensor-sampling":
            return request_bytes(name, mid, args)
        return bytes(to_wire(self.protocol, Message.request(name, *args, mid=mid)))


# -- gates -----------------------------------------------------------------------------------

_V5_ONLY_STRATEGIES = frozenset({"event-rate", "differential-rate"})


def strategy_allowed(protocol: ProtocolFlags, strategy: str) -> bool:
    """Whether the sampling strategy (wire name, e.g. ``event-rate``) exists in this dialect."""
    return protocol.major >= 5 or strategy not in _V5_ONLY_STRATEGIES


def strategy_error(protocol: ProtocolFlags, strategy: str) -> Optional[str]:
    """The ``fail`` text for a strategy the dialect lacks (katcp-python's words), or ``None``."""
    if strategy_allowed(protocol, strategy):
        return None
    return f"Strategy {strategy} not allowed for version {protocol.major} of katcp"


def bulk_sampling_error(protocol: ProtocolFlags, names: bytes) -> Optional[str]:
    """The ``fail`` text for a ``?sensor-sampling`` name list without ``B``, or ``None``."""
    if b"," not in names or protocol.bulk_set_sensor_sampling:
        return None
    return f"Bulk sensor-sampling (a comma-separated list) needs protocol flag B, not {protocol}"


#: Standard requests that exist only in some dialects: name -> test.
_REQUEST_GATES: Dict[str, Callable[[ProtocolFlags], bool]] = {
    "version-list": lambda p: p.major >= 5,
    "request-timeout-hint": lambda p: p.request_timeout_hints,
}


def request_available(protocol: ProtocolFlags, name: str) -> bool:
    """Whether the standard request `name` exists in this dialect.

    v4 has no ``?version-list``; ``?request-timeout-hint`` needs flag ``T``.
    A request that does not exist is answered like any unknown request and
    is left out of ``?help``.
    """
    gate = _REQUEST_GATES.get(name)
    return gate is None or gate(protocol)


def reply_mid(protocol: ProtocolFlags, mid: Optional[int]) -> Optional[int]:
    """The message id a reply (or request inform) carries: none without flag ``I``."""
    return mid if protocol.message_ids else None


# -- connect informs -------------------------------------------------------------------------


def sends_version_connect(protocol: ProtocolFlags) -> bool:
    """Whether a device announces itself with ``#version-connect`` (v5) rather than v4 informs."""
    return protocol.major >= 5


def v4_connect_informs(version: str, build_state: str) -> List[Message]:
    """The informs a v4 device sends on connect: ``#version`` then ``#build-state``."""
    return [Message.inform("version", version), Message.inform("build-state", build_state)]


# -- version detection (client side) ---------------------------------------------------------


class VersionInfo(NamedTuple):
    """One version row a device announced (see :attr:`aiokatcp.client.Client.versions`)."""

    version: str
    build_state: Optional[str] = None


VersionInfo.__module__ = "aiokatcp.protocol"


class DetectResult(enum.Enum):
    """What :meth:`VersionDetector.feed` did with a message."""

    #: Not a connect inform; handle it as usual.
    IGNORED = 0
    #: A version row was stored; the protocol did not change.
    RECORDED = 1
    #: The protocol became known with this message.
    DETECTED = 2
    #: It contradicts the preset protocol and was ignored (log a warning).
    CONTRADICTS_PRESET = 3
    #: A connect inform with too few arguments; nothing stored (log it).
    MALFORMED = 4
    #: A second, different ``katcp-protocol``: ignored, the first stays (log a warning).
    CONTRADICTS_DETECTED = 5


_V5_INFORM = "version-connect"
_V4_INFORMS = frozenset({"version", "build-state"})
#: Names of the informs :class:`VersionDetector` looks at.
CONNECT_INFORMS = _V4_INFORMS | {_V5_INFORM}


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


class VersionDetector:
    """Works out a device's protocol from its connect informs.

    Feed it every inform the device sends (:meth:`feed` ignores the others).
    Rules, which depend only on *which* informs arrived, never on their order:

    - ``#version-connect katcp-protocol X`` sets protocol X (major 5 only,
      as aiokatcp 2.3); any ``#version-connect`` is a v5 signal.
    - ``#version`` or ``#build-state`` is a v4 signal and sets protocol 4.0.
    - Both kinds of signal make :meth:`feed` raise :exc:`ProtocolError` (seed
      004: "the client gives up auto-detection and disconnects"), whichever
      came first, and again on every later call. A second, different
      ``katcp-protocol`` is :attr:`DetectResult.CONTRADICTS_DETECTED` (ignored,
      as aiokatcp 2.3 does; katcp-python 0.9.3 disconnects). katcp-python
      0.9.3 only counts ``katcp-protocol`` as a v5 signal; we count every
      ``#version-connect``, as the seed says.
    - With a `preset` protocol nothing is detected: contradictions are
      reported as :attr:`DetectResult.CONTRADICTS_PRESET` and ignored.

    Every row is kept in :attr:`versions` by role (``katcp-protocol``,
    ``katcp-library``, ``katcp-device``, extra roles; ``version`` and
    ``build-state`` for v4).

    Parameters
    ----------
    preset
        The protocol to use instead of detecting one.
    """

    def __init__(self, preset: Optional[ProtocolFlags] = None) -> None:
        self.preset = preset
        self.detected: Optional[ProtocolFlags] = None
        self.versions: Dict[str, VersionInfo] = {}
        self.error: Optional[ProtocolError] = None
        self._v4_seen: Optional[str] = None
        self._v5_seen: Optional[str] = None

    @property
    def protocol(self) -> Optional[ProtocolFlags]:
        """The preset or detected protocol; ``None`` while unknown."""
        return self.preset if self.preset is not None else self.detected

    @property
    def effective(self) -> ProtocolFlags:
        """The protocol to talk with now (:data:`ASSUMED_PROTOCOL` while unknown)."""
        protocol = self.protocol
        return ASSUMED_PROTOCOL if protocol is None else protocol

    def _fail(self, text: str, version: str) -> DetectResult:
        if self.preset is not None:
            return DetectResult.CONTRADICTS_PRESET
        self.error = ProtocolError(text, version)
        raise self.error

    def feed(self, msg: Message) -> DetectResult:
        """Take one message from the device.

        Raises
        ------
        ProtocolError
            if the informs are contradictory or the protocol is unusable
            (never with a preset protocol)
        """
        if msg.mtype != Message.Type.INFORM or (
            msg.name != _V5_INFORM and msg.name not in _V4_INFORMS
        ):
            return DetectResult.IGNORED
        if self.error is not None:
            raise self.error
        args = msg.arguments
        described = f"#{msg.name} " + " ".join(_text(arg) for arg in args)
        if msg.name in _V4_INFORMS:
            if not args:
                return DetectResult.MALFORMED
            self.versions[msg.name] = VersionInfo(_text(args[0]))
            if self._v4_seen is None:
                self._v4_seen = described
            if self._v5_seen is not None:
                return self._mixed()
            return self._set(ProtocolFlags(4, 0))
        if len(args) < 2:
            return DetectResult.MALFORMED
        role, version = _text(args[0]), _text(args[1])
        self.versions[role] = VersionInfo(version, _text(args[2]) if len(args) > 2 else None)
        if self._v5_seen is None:
            self._v5_seen = described
        if self._v4_seen is not None:
            return self._mixed()
        if role != "katcp-protocol":
            return DetectResult.RECORDED
        try:
            protocol = ProtocolFlags.parse(version)
        except ValueError as exc:
            if str(exc).startswith("unparsable"):
                return self._fail(f"Unparsable katcp-protocol {version!r}", version)
            return self._fail(f"Invalid katcp-protocol {version!r}: {exc}", version)
        if protocol.major != 5:
            return self._fail(
                f"Unknown protocol version {protocol.major}.{protocol.minor}", version
            )
        if self.preset is None and self.detected is not None and self.detected != protocol:
            # aiokatcp 2.3 keeps the first and ignores the second (katcp-python disconnects).
            return DetectResult.CONTRADICTS_DETECTED
        return self._set(protocol)

    def _mixed(self) -> DetectResult:
        text = (
            "Device sent both KATCP v4 and v5 connect informs "
            f"({self._v4_seen!r} and {self._v5_seen!r}); use a preset protocol for it"
        )
        version = str(self.detected) if self.detected is not None else ""
        return self._fail(text, version)

    def _set(self, protocol: ProtocolFlags) -> DetectResult:
        if self.preset is not None:
            # A v4 signal agrees with any pre-v5 preset; a katcp-protocol must match exactly.
            agrees = protocol == self.preset or (
                not sends_version_connect(protocol) and not sends_version_connect(self.preset)
            )
            return DetectResult.RECORDED if agrees else DetectResult.CONTRADICTS_PRESET
        if self.detected is None:
            self.detected = protocol
            return DetectResult.DETECTED
        return DetectResult.RECORDED
