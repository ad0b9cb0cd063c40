"""Print the exception type and text of common API misuses (diff two interpreters)."""

import enum
import ipaddress

import aiokatcp
from aiokatcp import Address, Message, Sensor, SensorSet, Timestamp
from aiokatcp.core import LogLevel


class E(enum.Enum):
    A = 1


def probe(label, fn):
    try:
        result = fn()
    except Exception as exc:
        print(label, "->", type(exc).__name__, repr(str(exc)))
    else:
        print(label, "=>", repr(result))


s = Sensor(int, "s")
probe("msg bad name", lambda: Message.request("1x"))
probe("msg bad name2", lambda: Message.request("a_b"))
probe("msg mid 0", lambda: Message.request("x", mid=0))
probe("msg mid big", lambda: Message.request("x", mid=2**31))
probe("msg bad arg", lambda: Message.request("x", object()))
probe("parse no nl", lambda: Message.parse(b"?x"))
probe("parse two", lambda: Message.parse(b"?x\n?y\n"))
probe("parse bad", lambda: Message.parse(b"?x \\q\n"))
probe("parse empty", lambda: Message.parse(b"\n"))
probe("parse ok", lambda: Message.parse(b"?x[1] a\\_b \\@\n"))
probe("unescape bad", lambda: Message.unescape_argument(b"\\q"))
probe("unescape trailing", lambda: Message.unescape_argument(b"a\\"))
probe("escape", lambda: Message.escape_argument(b"a b\\\n\x00\x1b\t\r"))
probe("bytes msg", lambda: bytes(Message.inform("x", 1.5, True, b"", "s", E.A, Timestamp(2))))
probe("repr msg", lambda: repr(Message.request("x", 1, mid=3)))
probe("set str on int", lambda: s.set_value("x"))
probe("set float on int", lambda: s.set_value(1.5))
probe("set bool on int", lambda: s.set_value(True))
probe("sensor bad type", lambda: Sensor(object, "o"))
probe("sensor enum default", lambda: Sensor(E, "e").value)
probe("sensorset remove", lambda: SensorSet().remove(s))
probe("sensorset getitem", lambda: SensorSet()["x"])
probe("sensorset pop", lambda: SensorSet().pop("x"))
probe("sensorset pop default", lambda: SensorSet().pop("x", None))
probe("sensorset popitem", lambda: SensorSet().popitem())
probe("register dup", lambda: aiokatcp.register_type(int, "x", str.encode, lambda c: c))
probe("get_type object", lambda: aiokatcp.get_type(object))
probe("encode object", lambda: aiokatcp.encode(object()))
probe("decode object", lambda: aiokatcp.decode(object, b"1"))
probe("decode int blank", lambda: aiokatcp.decode(int, b" 1"))
probe("decode float", lambda: aiokatcp.decode(float, b"x"))
probe("decode bool", lambda: aiokatcp.decode(bool, b"2"))
probe("decode enum", lambda: aiokatcp.decode(E, b"b"))
probe("decode str", lambda: aiokatcp.decode(str, b"\xff"))
probe("decode ts", lambda: aiokatcp.decode(Timestamp, b"x"))
probe("decode now", lambda: aiokatcp.decode(aiokatcp.TimestampOrNow, b"now"))
probe("decode tsornow", lambda: aiokatcp.decode(aiokatcp.TimestampOrNow, b"1.5"))
probe("encode float", lambda: [aiokatcp.encode(v) for v in (1.0, 1e300, float("nan"), 0.1, -0.0)])
probe("encode ts", lambda: aiokatcp.encode(Timestamp(1234567890.123456789)))
probe("address host str", lambda: Address("1.2.3.4"))  # type: ignore
probe("address repr", lambda: repr(Address(ipaddress.ip_address("::1"), 80)))
probe("address eq", lambda: Address(ipaddress.ip_address("1.2.3.4")) == Address.parse(b"1.2.3.4"))
probe("loglevel from_python 15", lambda: LogLevel.from_python(15))
probe("loglevel from_python 20", lambda: LogLevel.from_python(20))
probe("status str", lambda: (str(Sensor.Status.NOMINAL), format(Sensor.Status.NOMINAL)))
probe("reading repr", lambda: repr(s.reading)[:30])
probe(
    "sampler factory bad",
    lambda: aiokatcp.SensorSampler.factory(
        s, None, None, aiokatcp.SensorSampler.Strategy.PERIOD, b"1", b"2"
    ),
)  # type: ignore
probe(
    "sampler period neg",
    lambda: aiokatcp.SensorSampler.factory(
        s, None, None, aiokatcp.SensorSampler.Strategy.PERIOD, b"-1"
    ),
)  # type: ignore
probe(
    "sampler diff on str",
    lambda: aiokatcp.SensorSampler.factory(
        Sensor(str, "t"), None, None, aiokatcp.SensorSampler.Strategy.DIFFERENTIAL, b"1"
    ),
)  # type: ignore
probe(
    "protocol error",
    lambda: (str(aiokatcp.ProtocolError("m", "v")), aiokatcp.ProtocolError("m", "v").version),
)
probe(
    "syntax error",
    lambda: (str(aiokatcp.KatcpSyntaxError("m", b"r")), aiokatcp.KatcpSyntaxError("m", b"r").raw),
)
probe("timesync key", lambda: aiokatcp.TimeSyncUpdater({"bogus": s}))
