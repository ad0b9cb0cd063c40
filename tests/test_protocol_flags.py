"""ProtocolFlags: text form, validation, comparison.

Expected values marked "katcp-python 0.9.3" were measured by running that
library as a black box (``katcp.ProtocolFlags``); the differences we chose are
marked "differs".
"""

from __future__ import annotations

import pickle

import pytest

import aiokatcp
from aiokatcp import ProtocolFlags


def test_constants() -> None:
    # katcp-python 0.9.3: b"M", b"I", b"B", b"T" (we use str, like 2.x protocol_flags)
    assert ProtocolFlags.MULTI_CLIENT == "M"
    assert ProtocolFlags.MESSAGE_IDS == "I"
    assert ProtocolFlags.BULK_SET_SENSOR_SAMPLING == "B"
    assert ProtocolFlags.REQUEST_TIMEOUT_HINTS == "T"


def test_public() -> None:
    assert aiokatcp.ProtocolFlags is aiokatcp.protocol.ProtocolFlags
    assert ProtocolFlags.__module__ == "aiokatcp.protocol"
    assert "ProtocolFlags" in aiokatcp.__all__
    assert "ProtocolFlags" in aiokatcp.protocol.__all__


@pytest.mark.parametrize(
    ("text", "major", "minor", "flags"),
    [
        ("5.1-MIB", 5, 1, {"M", "I", "B"}),
        ("5.0", 5, 0, set()),
        ("5.0-", 5, 0, set()),  # katcp-python 0.9.3: empty flag list
        ("4.0", 4, 0, set()),
        ("4.1", 4, 1, set()),
        ("5.0-IM", 5, 0, {"I", "M"}),
        ("5.1-MMI", 5, 1, {"M", "I"}),  # katcp-python 0.9.3: duplicates collapse
        ("5.1-MIBX", 5, 1, {"M", "I", "B", "X"}),  # unknown flags are kept
        ("05.01-M", 5, 1, {"M"}),  # katcp-python 0.9.3: leading zeros
        ("5.0-mi", 5, 0, {"m", "i"}),  # case-sensitive: these are not M and I
        ("5.1-BIMT", 5, 1, {"B", "I", "M", "T"}),
        ("6.2-I", 6, 2, {"I"}),
    ],
)
def test_parse(text: str, major: int, minor: int, flags: set[str]) -> None:
    for given in (text, text.encode()):
        parsed = ProtocolFlags.parse(given)
        assert (parsed.major, parsed.minor, parsed.flags) == (major, minor, frozenset(flags))
        assert parsed.version == (major, minor)


def test_parse_lowercase_is_not_a_known_flag() -> None:
    parsed = ProtocolFlags.parse("5.0-mi")
    assert not parsed.multi_client
    assert not parsed.message_ids


@pytest.mark.parametrize(
    "text",
    # differs: katcp-python 0.9.3 returns version 0.0 for all of these
    ["5", "a.b", " 5.0", "5.0 ", "5.1.2", "-1.0", "", "5.0-M\n", "5.0\n", "5.0-M I", "5.x"],
)
def test_parse_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match=r"katcp protocol version|one non-blank character"):
        ProtocolFlags.parse(text)


def test_parse_rejects_non_ascii_bytes() -> None:
    with pytest.raises(ValueError, match="unparsable"):
        ProtocolFlags.parse(b"5.0-\xff")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # katcp-python 0.9.3 raises ValueError for the same three
        ("4.0-I", r"MESSAGE_IDS \(I\) is only supported in katcp v5.0 and newer, not 4.0"),
        ("5.0-B", r"BULK_SET_SENSOR_SAMPLING \(B\) is only supported in katcp v5.1"),
        ("5.0-T", r"REQUEST_TIMEOUT_HINTS \(T\) is only supported in katcp v5.1"),
    ],
)
def test_flag_needs_version(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProtocolFlags.parse(text)
    major, minor = (int(x) for x in text.split("-")[0].split("."))
    with pytest.raises(ValueError, match=message):
        ProtocolFlags(major, minor, text.split("-")[1])


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="one non-blank character: 'MI'"):
        ProtocolFlags(5, 0, {"MI"})  # katcp-python 0.9.3 accepts this as one flag
    with pytest.raises(ValueError, match="non-blank"):
        ProtocolFlags(5, 0, {" "})
    with pytest.raises(TypeError, match="not bytes"):
        ProtocolFlags(5, 0, b"MI")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be int"):
        ProtocolFlags("5", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be int"):
        ProtocolFlags(True, 0)
    with pytest.raises(ValueError, match="negative"):
        ProtocolFlags(5, -1)
    assert ProtocolFlags(5, 0).flags == frozenset()
    assert ProtocolFlags(5, 1, ["M", "I"]).flags == {"M", "I"}
    assert ProtocolFlags(3, 0).flags == frozenset()  # katcp-python 0.9.3 allows 3.0


@pytest.mark.parametrize(
    ("flags", "text"),
    [
        (ProtocolFlags(5, 1, "BIM"), "5.1-MIB"),  # aiokatcp 2.3's wire form
        (ProtocolFlags(5, 1, "TBIM"), "5.1-MIBT"),
        (ProtocolFlags(5, 0), "5.0"),
        (ProtocolFlags(4, 0, "M"), "4.0-M"),
        (ProtocolFlags(5, 1, "ZXBM"), "5.1-MBXZ"),  # known flags first, then sorted
    ],
)
def test_format(flags: ProtocolFlags, text: str) -> None:
    assert str(flags) == text
    assert bytes(flags) == text.encode()
    assert ProtocolFlags.parse(text) == flags


def test_repr_round_trips() -> None:
    flags = ProtocolFlags(5, 1, "BIM")
    assert repr(flags) == "ProtocolFlags(5, 1, 'MIB')"
    assert eval(repr(flags), {"ProtocolFlags": ProtocolFlags}) == flags


def test_equality_and_hash() -> None:
    assert ProtocolFlags(5, 0, "M") == ProtocolFlags(5, 0, {"M"})
    assert ProtocolFlags(5, 0, "M") != ProtocolFlags(5, 0, "I")
    assert ProtocolFlags(5, 0, "M") != ProtocolFlags(5, 1, "M")
    assert ProtocolFlags(5, 0) != (5, 0)
    assert len({ProtocolFlags(5, 1, "MI"), ProtocolFlags(5, 1, "IM")}) == 1
    assert pickle.loads(pickle.dumps(ProtocolFlags(5, 1, "MIB"))) == ProtocolFlags(5, 1, "MIB")


def test_ordering_compares_versions() -> None:
    v4 = ProtocolFlags(4, 0, "M")
    v50 = ProtocolFlags(5, 0, "MI")
    v51 = ProtocolFlags(5, 1, "MIB")
    assert v4 < v50 < v51
    assert v51 > v4
    assert v51 >= (5, 1)
    assert not v50 >= (5, 1)
    assert v50 <= (5, 0)
    assert v4 < (5, 0)
    # Same version, different flags: ordered equal, not equal.
    other = ProtocolFlags(5, 0, "M")
    assert other <= v50 and other >= v50 and other != v50
    with pytest.raises(TypeError):
        assert v50 < "5.1"  # type: ignore[operator]
    with pytest.raises(TypeError):
        assert v50 < (5, 1, 0)  # type: ignore[operator]


def test_supports() -> None:
    flags = ProtocolFlags.parse("5.1-MIB")
    assert flags.supports(ProtocolFlags.MULTI_CLIENT)
    assert flags.supports("I")
    assert flags.supports("B")
    assert not flags.supports(ProtocolFlags.REQUEST_TIMEOUT_HINTS)
    assert not flags.supports("X")
    assert (flags.multi_client, flags.message_ids) == (True, True)
    assert (flags.bulk_set_sensor_sampling, flags.request_timeout_hints) == (True, False)


def test_immutable() -> None:
    flags = ProtocolFlags(5, 0)
    with pytest.raises(AttributeError):
        flags.major = 4  # type: ignore[misc]
