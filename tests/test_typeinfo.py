"""The type registry: built-in types, custom registrations, unions, errors."""

from __future__ import annotations

import enum
import ipaddress
import math
import sys
from typing import Any, Optional, Union

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiokatcp.core import (
    Address,
    DeviceStatus,
    LogLevel,
    Now,
    Timestamp,
    TimestampOrNow,
    TypeInfo,
    decode,
    encode,
    get_decoder,
    get_type,
    register_type,
)


class Colour(enum.Enum):
    RED = 1
    DARK_GREEN = 2


class Custom(enum.Enum):
    ABC = 1
    DEF = 2

    def __init__(self, value: int) -> None:
        self.katcp_value = {1: "a-b-c", 2: b"d\xffe"}[value]


class MyInt(int):
    pass


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@pytest.mark.parametrize(
    ("type_", "value", "raw"),
    [
        (bytes, b"hello world", b"hello world"),
        (bytes, b"", b""),
        (str, "caf\u00e9", b"caf\xc3\xa9"),
        (int, 42, b"42"),
        (int, -7, b"-7"),
        (int, 10**30, b"1" + b"0" * 30),
        (float, 1.5, b"1.5"),
        (float, 1.0, b"1.0"),
        (float, 1e300, b"1e+300"),
        (float, -0.0, b"-0.0"),
        (bool, True, b"1"),
        (bool, False, b"0"),
        (Timestamp, Timestamp(1234567890.25), b"1234567890.25"),
        (Colour, Colour.DARK_GREEN, b"dark-green"),
        (Custom, Custom.ABC, b"a-b-c"),
        (Custom, Custom.DEF, b"d\xffe"),
        (Level, Level.HIGH, b"high"),
        (LogLevel, LogLevel.TRACE, b"trace"),
        (LogLevel, LogLevel.ALL, b"all"),
        (LogLevel, LogLevel.WARN, b"warn"),
        (DeviceStatus, DeviceStatus.DEGRADED, b"degraded"),
        (Now, Now.NOW, b"now"),
        (Address, Address(ipaddress.IPv4Address("10.0.0.1"), 7147), b"10.0.0.1:7147"),
        (Address, Address(ipaddress.IPv6Address("::1")), b"[::1]"),
        (MyInt, MyInt(3), b"3"),
    ],
)
def test_round_trip_table(type_: Any, value: Any, raw: bytes) -> None:
    assert encode(value) == raw
    decoded = decode(type_, raw)
    assert decoded == value
    assert type(decoded) is type(value)


@pytest.mark.parametrize(
    ("type_", "raw", "message"),
    [
        (int, b"abc", r"^invalid literal for int\(\) with base 10: b'abc'$"),
        (int, b"1.5", "invalid literal for int"),
        (int, b"", "invalid literal for int"),
        (int, b" 5", "invalid literal for int"),
        (int, b"1_000", "invalid literal for int"),
        (float, b"x", r"^could not convert string to float: b'x'$"),
        (float, b"1.5 ", "could not convert string to float"),
        (float, b"1_0.5", "could not convert string to float"),
        (bool, b"true", r"^boolean must be 0 or 1, not b'true'$"),
        (bool, b"2", "boolean must be 0 or 1"),
        (str, b"\xff", r"'utf-8' codec can't decode byte 0xff"),
        (Timestamp, b"yesterday", "could not convert string to float: b'yesterday'"),
        (Colour, b"blue", r"^b'blue' is not a valid value for Colour$"),
        (Colour, b"RED", "not a valid value for Colour"),
        (Address, b"localhost", r"^Expected 4 octets in 'localhost'$"),
        (Address, b"localhost:80x", r"^could not parse 'localhost:80x' as an address$"),
        (LogLevel, b"verbose", "not a valid value for LogLevel"),
    ],
)
def test_decode_errors(type_: Any, raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode(type_, raw)


def test_type_names() -> None:
    assert get_type(int).name == "integer"
    assert get_type(float).name == "float"
    assert get_type(bool).name == "boolean"
    assert get_type(bytes).name == "string"
    assert get_type(str).name == "string"
    assert get_type(Address).name == "address"
    assert get_type(Timestamp).name == "timestamp"
    assert get_type(Colour).name == "discrete"
    assert get_type(Level).name == "discrete"  # an IntEnum is discrete, not integer


def test_defaults() -> None:
    assert get_type(int).default(int) == 0
    assert get_type(float).default(float) == 0.0
    assert get_type(bool).default(bool) is False
    assert get_type(bytes).default(bytes) == b""
    assert get_type(str).default(str) == ""
    assert get_type(Colour).default(Colour) is Colour.RED
    assert get_type(Address).default(Address) == Address(ipaddress.IPv4Address("0.0.0.0"))
    assert get_type(Timestamp).default(Timestamp) == Timestamp(0.0)


def test_special_floats() -> None:
    assert encode(math.inf) == b"inf"
    assert encode(float("nan")) == b"nan"
    assert math.isnan(decode(float, b"nan"))
    assert decode(float, b"-inf") == -math.inf
    assert decode(float, b"1e-05") == 1e-05


def test_int_accepts_sign() -> None:
    assert decode(int, b"+5") == 5
    assert decode(int, b"-0") == 0


def test_typeinfo_decode_compat() -> None:
    info = get_type(int)
    assert isinstance(info, TypeInfo)
    assert info.decode(int, b"12") == 12
    assert "integer" in repr(info)


def test_unregistered() -> None:
    with pytest.raises(TypeError, match="not registered"):
        encode(object())
    with pytest.raises(TypeError, match="not registered"):
        get_type(dict)
    with pytest.raises(TypeError, match="not registered"):
        decode(list, b"x")


class TestUnion:
    def test_optional(self) -> None:
        assert decode(Optional[int], b"5") == 5
        with pytest.raises(ValueError, match="invalid literal for int"):
            decode(Optional[int], b"x")

    def test_timestamp_or_now(self) -> None:
        assert decode(TimestampOrNow, b"now") is Now.NOW
        value = decode(TimestampOrNow, b"12.5")
        assert value == 12.5
        assert isinstance(value, Timestamp)

    def test_none_of_them(self) -> None:
        with pytest.raises(ValueError, match=r"b'x' is not a valid Timestamp or Now"):
            decode(TimestampOrNow, b"x")

    def test_ambiguous(self) -> None:
        with pytest.raises(ValueError, match="ambiguous"):
            decode(Union[int, float], b"3")

    def test_optional_union(self) -> None:
        assert decode(Optional[Union[int, Colour]], b"red") is Colour.RED
        assert decode(Optional[Union[int, Colour]], b"7") == 7

    @pytest.mark.skipif(sys.version_info < (3, 10), reason="PEP 604 unions need Python 3.10")
    def test_pep604(self) -> None:
        assert decode(eval("int | None"), b"8") == 8
        assert decode(eval("Timestamp | Now"), b"now") is Now.NOW


class TestRegister:
    def test_custom_type(self) -> None:
        class Fraction:
            def __init__(self, num: int = 0, den: int = 1) -> None:
                self.num = num
                self.den = den

        def get_fraction_decoder(cls: type[Fraction]) -> Any:
            def decode_fraction(raw: bytes) -> Fraction:
                num, _, den = raw.partition(b"/")
                return cls(int(num), int(den))

            return decode_fraction

        def encode_fraction(f: Fraction) -> bytes:
            return b"%d/%d" % (f.num, f.den)

        register_type(Fraction, "fraction", encode_fraction, get_fraction_decoder)
        assert encode(Fraction(1, 3)) == b"1/3"
        value = decode(Fraction, b"2/5")
        assert (value.num, value.den) == (2, 5)
        assert get_type(Fraction).name == "fraction"
        assert isinstance(get_type(Fraction).default(Fraction), Fraction)
        assert get_decoder(Optional[Fraction])(b"1/2").den == 2

    def test_duplicate(self) -> None:
        with pytest.raises(ValueError, match="already registered"):
            register_type(bool, "boolean", lambda x: b"", lambda cls: cls)

    def test_newest_wins_for_subclass(self) -> None:
        class Special(float):
            pass

        register_type(Special, "special", lambda x: b"special", lambda cls: lambda raw: cls(1.0))
        assert encode(Special(3.0)) == b"special"
        assert encode(3.0) == b"3.0"


_ENUMS = [Colour, Level, LogLevel, DeviceStatus, Now]


@st.composite
def _values(draw: st.DrawFn) -> tuple[Any, Any]:
    kind = draw(st.sampled_from(["bytes", "str", "int", "float", "bool", "ts", "enum", "addr"]))
    if kind == "bytes":
        return bytes, draw(st.binary())
    if kind == "str":
        return str, draw(st.text())
    if kind == "int":
        return int, draw(st.integers())
    if kind == "float":
        return float, draw(st.floats(allow_nan=False))
    if kind == "bool":
        return bool, draw(st.booleans())
    if kind == "ts":
        return Timestamp, Timestamp(draw(st.floats(allow_nan=False, allow_infinity=False)))
    if kind == "enum":
        cls = draw(st.sampled_from(_ENUMS))
        return cls, draw(st.sampled_from(list(cls)))
    host = draw(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
    port = draw(st.one_of(st.none(), st.integers(0, 65535)))
    return Address, Address(host, port)


@given(_values())
def test_round_trip_property(type_and_value: tuple[Any, Any]) -> None:
    type_, value = type_and_value
    decoded = decode(type_, encode(value))
    assert decoded == value
    assert type(decoded) is type(value)
