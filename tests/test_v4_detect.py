"""Version detection from connect informs.

What katcp-python 0.9.3's DeviceClient does with the same informs is recorded
in ``tests/data/katcp_v4_client_detect.txt``; the comments say where we agree.
"""

from __future__ import annotations

import itertools
from typing import List

import pytest

from aiokatcp import Message, ProtocolError, ProtocolFlags
from aiokatcp._dialect import (
    ASSUMED_PROTOCOL,
    DetectResult,
    VersionDetector,
    VersionInfo,
)

V5_PROTOCOL = b"#version-connect katcp-protocol 5.0-IM"
V5_LIBRARY = b"#version-connect katcp-library x-1.0"
V4_VERSION = b"#version dbe-2.1"
V4_BUILD = b"#build-state dbesim-2.1b4"


def msg(line: bytes) -> Message:
    return Message.parse(line + b"\n")


def feed_all(detector: VersionDetector, lines: List[bytes]) -> List[DetectResult]:
    return [detector.feed(msg(line)) for line in lines]


def test_v5() -> None:
    detector = VersionDetector()
    assert detector.protocol is None
    assert detector.effective == ASSUMED_PROTOCOL
    results = feed_all(
        detector, [V5_PROTOCOL, V5_LIBRARY, b"#version-connect katcp-device api-1.0 build-1.0"]
    )
    assert results == [DetectResult.DETECTED, DetectResult.RECORDED, DetectResult.RECORDED]
    assert detector.protocol == ProtocolFlags(5, 0, "IM")  # katcp-python 0.9.3: 5.0-IM
    assert detector.effective == detector.protocol
    assert detector.versions == {
        "katcp-protocol": VersionInfo("5.0-IM"),
        "katcp-library": VersionInfo("x-1.0"),
        "katcp-device": VersionInfo("api-1.0", "build-1.0"),
    }


@pytest.mark.parametrize("lines", [[V4_VERSION, V4_BUILD], [V4_BUILD, V4_VERSION], [V4_BUILD]])
def test_v4(lines: List[bytes]) -> None:
    # katcp-python 0.9.3: protocol 4.0 without flags, also for #build-state alone
    detector = VersionDetector()
    results = feed_all(detector, lines)
    assert results[0] is DetectResult.DETECTED
    assert all(result is DetectResult.RECORDED for result in results[1:])
    assert detector.protocol == ProtocolFlags(4, 0)
    assert detector.versions["build-state"] == VersionInfo("dbesim-2.1b4")
    if len(lines) == 2:
        assert detector.versions["version"] == VersionInfo("dbe-2.1")


def test_nothing_announced() -> None:
    # katcp-python 0.9.3: protocol None (its convert_seconds then raises AttributeError).
    # We talk at once with the assumed protocol: seconds, no ids.
    detector = VersionDetector()
    assert detector.feed(msg(b"#log warn 1.0 root hello")) is DetectResult.IGNORED
    assert detector.feed(msg(b"!version ok")) is DetectResult.IGNORED
    assert detector.protocol is None
    assert detector.effective == ProtocolFlags(5, 0)
    assert not detector.effective.message_ids


MIXED = [
    [V4_VERSION, V5_PROTOCOL],  # katcp-python 0.9.3: error, disconnect
    [V5_PROTOCOL, V4_BUILD],  # katcp-python 0.9.3: error, disconnect
    [V5_LIBRARY, V4_VERSION],  # katcp-python 0.9.3: accepted as v4 (differs: seed 004 rule)
    [V5_PROTOCOL, V5_LIBRARY, V4_VERSION, V4_BUILD],
]


@pytest.mark.parametrize("lines", MIXED)
def test_mixed_signals_fail_in_any_order(lines: List[bytes]) -> None:
    for order in itertools.permutations(lines):
        detector = VersionDetector()
        with pytest.raises(ProtocolError, match="both KATCP v4 and v5 connect informs"):
            feed_all(detector, list(order))
        assert isinstance(detector.error, ProtocolError)
        # Once failed, always failed.
        with pytest.raises(ProtocolError):
            detector.feed(msg(V5_PROTOCOL))
        assert detector.feed(msg(b"#log warn 1.0 root x")) is DetectResult.IGNORED


def test_mixed_error_names_both_informs() -> None:
    detector = VersionDetector()
    detector.feed(msg(V4_VERSION))
    with pytest.raises(ProtocolError) as info:
        detector.feed(msg(V5_PROTOCOL))
    assert "#version dbe-2.1" in str(info.value)
    assert "#version-connect katcp-protocol 5.0-IM" in str(info.value)
    assert info.value.version == "4.0"


def test_contradictory_katcp_protocol() -> None:
    # katcp-python 0.9.3 disconnects on 5.0-IM then 5.1-MIB; aiokatcp 2.3 keeps the first.
    detector = VersionDetector()
    detector.feed(msg(V5_PROTOCOL))
    assert detector.feed(msg(V5_PROTOCOL)) is DetectResult.RECORDED  # repeating is fine
    result = detector.feed(msg(b"#version-connect katcp-protocol 5.1-MIB"))
    assert result is DetectResult.CONTRADICTS_DETECTED
    assert detector.protocol == ProtocolFlags(5, 0, "MI") and detector.error is None


@pytest.mark.parametrize(
    ("line", "match", "version"),
    [
        # katcp-python 0.9.3 takes "junk" as 0.0 and 6.0 as is; we keep aiokatcp 2.3's errors.
        (b"#version-connect katcp-protocol junk", r"Unparsable katcp-protocol 'junk'", "junk"),
        (b"#version-connect katcp-protocol 6.0-MI", r"Unknown protocol version 6.0", "6.0-MI"),
        (b"#version-connect katcp-protocol 4.0", r"Unknown protocol version 4.0", "4.0"),
        (
            b"#version-connect katcp-protocol 4.0-I",
            r"Invalid katcp-protocol '4.0-I': MESSAGE_IDS \(I\) is only supported in katcp v5.0",
            "4.0-I",
        ),
    ],
)
def test_unusable_protocol(line: bytes, match: str, version: str) -> None:
    detector = VersionDetector()
    with pytest.raises(ProtocolError, match=match) as info:
        detector.feed(msg(line))
    assert info.value.version == version


def test_malformed_rows() -> None:
    detector = VersionDetector()
    assert detector.feed(msg(b"#version-connect katcp-protocol")) is DetectResult.MALFORMED
    assert detector.feed(msg(b"#version")) is DetectResult.MALFORMED
    assert detector.protocol is None
    assert detector.versions == {}


def test_extra_roles_kept() -> None:
    detector = VersionDetector()
    feed_all(detector, [V5_PROTOCOL, b"#version-connect kernel 5.10 build-7"])
    assert detector.versions["kernel"] == VersionInfo("5.10", "build-7")


def test_preset_v4_ignores_v5_informs() -> None:
    # katcp-python 0.9.3: keeps the preset 4.0, logs a warning, stays connected
    preset = ProtocolFlags(4, 0)
    detector = VersionDetector(preset)
    assert detector.protocol == preset
    results = feed_all(detector, [V5_PROTOCOL, V5_LIBRARY])
    assert results == [DetectResult.CONTRADICTS_PRESET, DetectResult.RECORDED]
    assert detector.protocol == preset
    assert detector.versions["katcp-library"] == VersionInfo("x-1.0")
    # v4 informs agree with a v4 preset; mixed signals are only a warning.
    assert detector.feed(msg(V4_VERSION)) is DetectResult.CONTRADICTS_PRESET
    assert detector.error is None


def test_preset_agreeing() -> None:
    detector = VersionDetector(ProtocolFlags(4, 0, "M"))
    assert feed_all(detector, [V4_VERSION, V4_BUILD]) == [DetectResult.RECORDED] * 2
    detector = VersionDetector(ProtocolFlags(5, 0, "MI"))
    assert detector.feed(msg(V5_PROTOCOL)) is DetectResult.RECORDED
    assert detector.feed(msg(b"#version-connect katcp-protocol 5.1-MIB")) is (
        DetectResult.CONTRADICTS_PRESET
    )
    assert detector.feed(msg(b"#version-connect katcp-protocol junk")) is (
        DetectResult.CONTRADICTS_PRESET
    )
    assert detector.protocol == ProtocolFlags(5, 0, "MI")
