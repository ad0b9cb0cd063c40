"""Value types: Address, Timestamp, Now, LogLevel, DeviceStatus."""

from __future__ import annotations

import ipaddress
import logging

import pytest

from aiokatcp.core import Address, DeviceStatus, LogLevel, Now, Timestamp


class TestAddress:
    @pytest.mark.parametrize(
        ("raw", "host", "port"),
        [
            (b"1.2.3.4", "1.2.3.4", None),
            (b"1.2.3.4:80", "1.2.3.4", 80),
            (b"[::1]", "::1", None),
            (b"[::1]:7147", "::1", 7147),
            (b"[fe80::1:2]:0", "fe80::1:2", 0),
            (b"[2001:db8::8:800:200c:417a]:5", "2001:db8::8:800:200c:417a", 5),
        ],
    )
    def test_parse(self, raw: bytes, host: str, port: int | None) -> None:
        addr = Address.parse(raw)
        assert addr.host == ipaddress.ip_address(host)
        assert addr.port == port
        assert bytes(addr) == raw

    @pytest.mark.parametrize(
        "raw",
        [
            b"localhost:80",
            b"1.2.3",
            b"1.2.3.4:",
            b"1.2.3.4:70000",
            b"::1",
            b"[::1",
            b"[::1]:",
            b"[1.2.3.4]",
            b"",
            b"\xff",
            b"1.2.3.4:-1",
        ],
    )
    def test_parse_bad(self, raw: bytes) -> None:
        with pytest.raises(ValueError):
            Address.parse(raw)

    @pytest.mark.parametrize(
        ("raw", "text"),
        [
            # aiokatcp 2.3's texts: the wrong shape, or ipaddress's own complaint
            (b"localhost:80", "Expected 4 octets in 'localhost'"),
            (b"300.1.1.1", "Octet 300 (> 255) not permitted in '300.1.1.1'"),
            (b"[zz]:80", "At least 3 parts expected in 'zz'"),
            (b"a:b:c", "could not parse 'a:b:c' as an address"),
            (b"1.2.3.4:+1", "could not parse '1.2.3.4:+1' as an address"),
            (b"[::1", "could not parse '[::1' as an address"),
        ],
    )
    def test_parse_bad_text(self, raw: bytes, text: str) -> None:
        with pytest.raises(ValueError) as info:
            Address.parse(raw)
        assert str(info.value) == text

    def test_host_must_be_ip(self) -> None:
        with pytest.raises(TypeError, match="IPv4Address or IPv6Address"):
            Address("1.2.3.4")  # type: ignore[arg-type]

    def test_port_range(self) -> None:
        with pytest.raises(ValueError, match="out of range"):
            Address(ipaddress.IPv4Address("1.2.3.4"), 65536)

    def test_str_repr_eq_hash(self) -> None:
        a = Address(ipaddress.IPv6Address("::1"), 80)
        b = Address.parse(b"[::1]:80")
        assert str(a) == "[::1]:80"
        assert repr(a) == "Address(IPv6Address('::1'), 80)"
        assert repr(Address(ipaddress.IPv4Address("1.2.3.4"))) == "Address(IPv4Address('1.2.3.4'))"
        assert a == b
        assert hash(a) == hash(b)
        assert a != Address(ipaddress.IPv6Address("::1"))
        assert a != "[::1]:80"

    def test_immutable(self) -> None:
        a = Address(ipaddress.IPv4Address("1.2.3.4"))
        with pytest.raises(AttributeError):
            a.port = 5  # type: ignore[misc]


def test_timestamp_is_float() -> None:
    assert isinstance(Timestamp(1.5), float)
    assert Timestamp(1.5) == 1.5


def test_now() -> None:
    assert list(Now) == [Now.NOW]


def test_device_status() -> None:
    assert [s.name for s in DeviceStatus] == ["OK", "DEGRADED", "FAIL"]


class TestLogLevel:
    def test_order(self) -> None:
        names = [level.name for level in sorted(LogLevel)]
        assert names == ["ALL", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"]

    def test_python_values(self) -> None:
        assert LogLevel.DEBUG == logging.DEBUG
        assert LogLevel.WARN == logging.WARNING
        assert LogLevel.FATAL == logging.CRITICAL
        assert LogLevel.ALL == logging.NOTSET

    @pytest.mark.parametrize(
        ("level", "expected"),
        [
            (0, LogLevel.ALL),
            (1, LogLevel.ALL),
            (5, LogLevel.TRACE),
            (9, LogLevel.TRACE),
            (10, LogLevel.DEBUG),
            (15, LogLevel.DEBUG),
            (20, LogLevel.INFO),
            (25, LogLevel.INFO),
            (30, LogLevel.WARN),
            (35, LogLevel.WARN),
            (40, LogLevel.ERROR),
            (45, LogLevel.ERROR),
            (50, LogLevel.FATAL),
            (55, LogLevel.FATAL),
            (60, LogLevel.FATAL),
            (1000, LogLevel.FATAL),
        ],
    )
    def test_from_python(self, level: int, expected: LogLevel) -> None:
        assert LogLevel.from_python(level) is expected
