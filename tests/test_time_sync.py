"""Clock-synchronisation sensors (adjtimex is replaced by a fake)."""

from __future__ import annotations

from typing import Tuple

import pytest

from aiokatcp import adjtimex
from aiokatcp.sensor import Sensor
from aiokatcp.time_sync import ClockState, TimeSyncUpdater


def _sensors() -> dict[str, Sensor]:
    return {
        "state": Sensor(ClockState, "ntp.state", "clock state"),
        "maxerror": Sensor(float, "ntp.maxerror", "max error", "s"),
        "esterror": Sensor(float, "ntp.esterror", "estimated error", "s"),
    }


def test_unknown_key() -> None:
    with pytest.raises(KeyError, match=r"^\"Key 'offset' is not valid\"$"):
        TimeSyncUpdater({"offset": Sensor(float, "x", "")})


def test_update(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake() -> Tuple[int, adjtimex.Timex]:
        timex = adjtimex.Timex()
        timex.maxerror = 2500
        timex.esterror = 100
        timex.status = adjtimex.STA_NANO
        timex.time.tv_sec = 1700000000
        timex.time.tv_usec = 500_000_000
        return adjtimex.TIME_OK, timex

    monkeypatch.setattr(adjtimex, "get_adjtimex", fake)
    sensors = _sensors()
    TimeSyncUpdater(sensors).update()
    assert sensors["state"].value is ClockState.OK
    assert sensors["state"].status == Sensor.Status.NOMINAL
    assert sensors["state"].timestamp == pytest.approx(1700000000.5)
    assert sensors["maxerror"].value == pytest.approx(0.0025)
    assert sensors["esterror"].value == pytest.approx(0.0001)


def test_unsynchronised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adjtimex, "get_adjtimex", lambda: (adjtimex.TIME_ERROR, adjtimex.Timex()))
    sensors = _sensors()
    TimeSyncUpdater({"state": sensors["state"]}).update()
    assert sensors["state"].value is ClockState.ERROR
    assert sensors["state"].status == Sensor.Status.ERROR


def test_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> Tuple[int, adjtimex.Timex]:
        raise NotImplementedError

    monkeypatch.setattr(adjtimex, "get_adjtimex", unavailable)
    sensors = _sensors()
    TimeSyncUpdater(sensors).update()
    assert all(s.status == Sensor.Status.INACTIVE for s in sensors.values())


def test_real_call_reads_state() -> None:
    try:
        state, timex = adjtimex.get_adjtimex()
    except NotImplementedError:
        pytest.skip("adjtimex is not available here")
    assert state in {s.value for s in ClockState}
    assert timex.maxerror >= 0
