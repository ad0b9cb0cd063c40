"""The sensor requests of DeviceServer, on the wire, on the virtual clock."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import importlib.util
import ipaddress
import os
import re
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

import async_solipsism
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from aiokatcp import Address, Timestamp
from aiokatcp._server_sampling import StatusCache
from aiokatcp.sensor import Reading, Sensor, SensorSampler
from aiokatcp.server import DeviceServer
from aiokatcp.testing import ScriptedPeer, running

Status = Sensor.Status
TS = 1700000000.25


class Mode(enum.Enum):
    IDLE = 1
    RUN_FAST = 2


class Server(DeviceServer):
    VERSION = "test-api-1.0"
    BUILD_STATE = "test-1.0.0"
    SENSOR_SAMPLING_CLEAR = True
    AUTO_INTERFACE_CHANGED = True


def make_sensors() -> List[Sensor[Any]]:
    cnt: Sensor[int] = Sensor(int, "cnt", "A counter", "count")
    cnt.set_value(3, timestamp=TS)
    temp: Sensor[float] = Sensor(
        float, "temp", "Temperature", "degC", nominal_range=(0, 20), warn_range=(-10, 30)
    )
    temp.set_value(21.5, timestamp=TS + 1)
    mode = Sensor(Mode, "mode", "Mode of operation")
    mode.set_value(Mode.RUN_FAST, timestamp=TS + 2)
    name = Sensor(str, "name", "a string")
    name.set_value("hello world", Status.NOMINAL, TS + 3)
    flag = Sensor(bool, "ok-flag", "Boolean")
    flag.set_value(True, timestamp=TS + 4)
    addr = Sensor(Address, "addr", "an address")
    addr.set_value(Address(ipaddress.IPv6Address("::1"), 80), timestamp=TS + 5)
    ts = Sensor(Timestamp, "ts", "a timestamp", "s")
    ts.set_value(Timestamp(1700000000.25), timestamp=TS + 6)
    return [cnt, temp, mode, name, flag, addr, ts]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    server = Server("127.0.0.1", 0)
    for sensor in make_sensors():
        server.sensors.add(sensor)
    async with running(server):
        yield server


async def connect(server: Server) -> ScriptedPeer:
    peer = await ScriptedPeer.connect_to(server)
    await peer.expect_connect()
    return peer


@pytest.fixture
async def peer(server: Server) -> AsyncIterator[ScriptedPeer]:
    peer = await connect(server)
    yield peer
    await peer.close()


def status_line(ts: float, name: str, status: str, value: str) -> bytes:
    return f"#sensor-status {ts!r} 1 {name} {status} {value}".encode()


async def no_more_lines(peer: ScriptedPeer) -> None:
    """Check nothing is waiting, using a watchdog round trip as a barrier."""
    assert await peer.request(b"?watchdog") == [b"!watchdog ok"]


# -- ?sensor-list ----------------------------------------------------------------------------


async def test_sensor_list_all(peer: ScriptedPeer) -> None:
    assert await peer.request(b"?sensor-list") == [
        b"#sensor-list addr an\\_address \\@ address",
        b"#sensor-list cnt A\\_counter count integer",
        b"#sensor-list mode Mode\\_of\\_operation \\@ discrete idle run-fast",
        b"#sensor-list name a\\_string \\@ string",
        b"#sensor-list ok-flag Boolean \\@ boolean",
        b"#sensor-list temp Temperature degC float 0.0 20.0 -10.0 30.0",
        b"#sensor-list ts a\\_timestamp s timestamp",
        b"!sensor-list ok 7",
    ]


async def test_sensor_list_forms(peer: ScriptedPeer) -> None:
    assert await peer.request(b"?sensor-list[5] cnt") == [
        b"#sensor-list[5] cnt A\\_counter count integer",
        b"!sensor-list[5] ok 1",
    ]
    assert await peer.request(b"?sensor-list /^t/") == [
        b"#sensor-list temp Temperature degC float 0.0 20.0 -10.0 30.0",
        b"#sensor-list ts a\\_timestamp s timestamp",
        b"!sensor-list ok 2",
    ]
    assert await peer.request(b"?sensor-list /zzz/") == [b"!sensor-list ok 0"]
    assert await peer.request(b"?sensor-list nosuch") == [
        b"!sensor-list fail Unknown\\_sensor\\_'nosuch'"
    ]
    assert await peer.request(b"?sensor-list /") == [b"!sensor-list fail Unknown\\_sensor\\_'/'"]
    lines = await peer.request(b"?sensor-list /(/")
    # (re's own text, as in aiokatcp 2.3)
    assert lines == [
        b"!sensor-list fail missing\\_),\\_unterminated\\_subpattern\\_at\\_position\\_0"
    ]


# -- ?sensor-value ---------------------------------------------------------------------------


async def test_sensor_value(peer: ScriptedPeer) -> None:
    assert await peer.request(b"?sensor-value") == [
        f"#sensor-value {TS + 5!r} 1 addr nominal [::1]:80".encode(),
        f"#sensor-value {TS!r} 1 cnt nominal 3".encode(),
        f"#sensor-value {TS + 2!r} 1 mode nominal run-fast".encode(),
        f"#sensor-value {TS + 3!r} 1 name nominal hello\\_world".encode(),
        f"#sensor-value {TS + 4!r} 1 ok-flag nominal 1".encode(),
        f"#sensor-value {TS + 1!r} 1 temp warn 21.5".encode(),
        f"#sensor-value {TS + 6!r} 1 ts nominal 1700000000.25".encode(),
        b"!sensor-value ok 7",
    ]
    assert await peer.request(b"?sensor-value[2] cnt") == [
        f"#sensor-value[2] {TS!r} 1 cnt nominal 3".encode(),
        b"!sensor-value[2] ok 1",
    ]
    assert await peer.request(b"?sensor-value /^[ao]/") == [
        f"#sensor-value {TS + 5!r} 1 addr nominal [::1]:80".encode(),
        f"#sensor-value {TS + 4!r} 1 ok-flag nominal 1".encode(),
        b"!sensor-value ok 2",
    ]
    assert await peer.request(b"?sensor-value nosuch") == [
        b"!sensor-value fail Unknown\\_sensor\\_'nosuch'"
    ]


# -- ?sensor-sampling: query and errors -----------------------------------------------------


async def test_query(server: Server, peer: ScriptedPeer) -> None:
    assert await peer.request(b"?sensor-sampling cnt") == [b"!sensor-sampling ok cnt none"]
    await peer.request(b"?sensor-sampling cnt event-rate 1 10")
    assert await peer.request(b"?sensor-sampling[9] cnt") == [
        b"!sensor-sampling[9] ok cnt event-rate 1.0 10.0"
    ]
    assert await peer.request(b"?sensor-sampling cnt,temp") == [
        b"!sensor-sampling fail Unknown\\_sensor\\_'cnt,temp'"  # (as in aiokatcp 2.3)
    ]
    assert await peer.request(b"?sensor-sampling nosuch") == [
        b"!sensor-sampling fail Unknown\\_sensor\\_'nosuch'"
    ]


async def test_auto_query_says_auto(server: Server, peer: ScriptedPeer) -> None:
    rated = Sensor(
        int, "rated", auto_strategy=SensorSampler.Strategy.PERIOD, auto_strategy_parameters=(5,)
    )
    server.sensors.add(rated)
    await peer.expect(b"#interface-changed sensor-list")
    lines = await peer.request(b"?sensor-sampling rated auto")
    assert lines[-1] == b"!sensor-sampling ok rated auto"
    assert await peer.request(b"?sensor-sampling rated") == [b"!sensor-sampling ok rated auto"]
    conn = server.connections[0]
    sampler = conn.get_sampler(rated)
    assert sampler is not None and sampler.longest == 5.0 and sampler.is_auto


@pytest.mark.parametrize(
    ("request_line", "reply"),
    [
        (b"?sensor-sampling cnt period", b"fail expected\\_1\\_strategy\\_arguments,\\_found\\_0"),
        (b"?sensor-sampling cnt event 1", b"fail expected\\_0\\_strategy\\_arguments,\\_found\\_1"),
        (b"?sensor-sampling cnt period 0", b"fail period\\_must\\_be\\_positive"),
        (b"?sensor-sampling cnt period -1", b"fail period\\_must\\_be\\_positive"),
        (
            b"?sensor-sampling name differential 2",
            b"fail differential\\_strategies\\_only\\_valid\\_for\\_integer"
            b"\\_and\\_float\\_sensors",
        ),
        (
            b"?sensor-sampling cnt differential 1.5",
            b"fail invalid\\_literal\\_for\\_int()\\_with\\_base\\_10:\\_b'1.5'",
        ),
        (
            b"?sensor-sampling cnt event-rate 2 1",
            b"fail shortest\\_interval\\_(2.0)\\_must\\_not\\_be\\_greater\\_than"
            b"\\_longest\\_interval\\_(1.0)",
        ),
        (b"?sensor-sampling cnt bogus", None),
        (b"?sensor-sampling cnt,nosuch event", b"fail Unknown\\_sensor\\_'nosuch'"),
        (b"?sensor-sampling cnt,temp,cnt event", b"fail Duplicate\\_sensor\\_name"),
        (
            b"?sensor-sampling cnt,name,temp differential 1",
            b"fail differential\\_strategies\\_only\\_valid\\_for\\_integer"
            b"\\_and\\_float\\_sensors",
        ),
        # With several problems, the first one in request order is reported.
        (
            b"?sensor-sampling cnt,name,nosuch differential 1",
            b"fail differential\\_strategies\\_only\\_valid\\_for\\_integer"
            b"\\_and\\_float\\_sensors",
        ),
        (b"?sensor-sampling cnt,nosuch,name differential 1", b"fail Unknown\\_sensor\\_'nosuch'"),
        (b"?sensor-sampling cnt,cnt,nosuch event", b"fail Duplicate\\_sensor\\_name"),
    ],
)
async def test_sampling_errors_change_nothing(
    server: Server, peer: ScriptedPeer, request_line: bytes, reply: Any
) -> None:
    lines = await peer.request(request_line)
    assert len(lines) == 1
    if reply is None:
        assert lines[0].startswith(b"!sensor-sampling fail ")
    else:
        assert lines[0] == b"!sensor-sampling " + reply
    for name in ("cnt", "temp", "name"):
        assert await peer.request(b"?sensor-sampling " + name.encode()) == [
            b"!sensor-sampling ok " + name.encode() + b" none"
        ]
    for sensor in server.sensors.values():
        assert sensor._observers == ()
    server.sensors["cnt"].value = 4
    await no_more_lines(peer)


# -- ?sensor-sampling: strategies on the virtual clock --------------------------------------


async def test_initial_update_before_reply(server: Server, peer: ScriptedPeer) -> None:
    assert await peer.request(b"?sensor-sampling[4] cnt event") == [
        status_line(TS, "cnt", "nominal", "3"),
        b"!sensor-sampling[4] ok cnt event",
    ]


async def test_auto(server: Server, peer: ScriptedPeer) -> None:
    cnt = server.sensors["cnt"]
    await peer.request(b"?sensor-sampling cnt auto")
    cnt.set_value(3, timestamp=TS + 10)
    cnt.set_value(3, timestamp=TS + 10)
    cnt.set_value(4, Status.WARN, TS + 11)
    await peer.expect(
        status_line(TS + 10, "cnt", "nominal", "3"),
        status_line(TS + 10, "cnt", "nominal", "3"),
        status_line(TS + 11, "cnt", "warn", "4"),
    )
    await no_more_lines(peer)


async def test_event(server: Server, peer: ScriptedPeer) -> None:
    cnt = server.sensors["cnt"]
    await peer.request(b"?sensor-sampling cnt event")
    cnt.set_value(3, timestamp=TS + 10)  # timestamp only: not a change
    cnt.set_value(3, Status.ERROR, TS + 11)  # status only: a change
    cnt.set_value(5, Status.ERROR, TS + 12)
    await peer.expect(
        status_line(TS + 11, "cnt", "error", "3"), status_line(TS + 12, "cnt", "error", "5")
    )
    await asyncio.sleep(100)
    await no_more_lines(peer)


async def test_differential(server: Server, peer: ScriptedPeer) -> None:
    temp = server.sensors["temp"]
    await peer.request(b"?sensor-sampling temp differential 0.5")
    temp.set_value(22.0, timestamp=TS + 10)  # exactly D
    temp.set_value(22.1, timestamp=TS + 11)
    await peer.expect(status_line(TS + 11, "temp", "warn", "22.1"))
    temp.set_value(35.0, timestamp=TS + 12)
    await peer.expect(status_line(TS + 12, "temp", "error", "35.0"))
    await no_more_lines(peer)


async def test_period(server: Server, peer: ScriptedPeer) -> None:
    cnt = server.sensors["cnt"]
    lines = await peer.request(b"?sensor-sampling cnt period 0.5")
    assert lines == [status_line(TS, "cnt", "nominal", "3"), b"!sensor-sampling ok cnt period 0.5"]
    await asyncio.sleep(1.2)
    # unchanged readings are resent with their original timestamp
    await peer.expect(
        status_line(TS, "cnt", "nominal", "3"), status_line(TS, "cnt", "nominal", "3")
    )
    await no_more_lines(peer)
    cnt.set_value(7, timestamp=TS + 10)
    cnt.set_value(8, timestamp=TS + 11)
    await no_more_lines(peer)  # held back until the next tick
    await asyncio.sleep(0.3)
    await peer.expect(status_line(TS + 11, "cnt", "nominal", "8"))
    await no_more_lines(peer)


async def test_event_rate(server: Server, peer: ScriptedPeer) -> None:
    loop = asyncio.get_running_loop()
    cnt = server.sensors["cnt"]
    await peer.request(b"?sensor-sampling cnt event-rate 1 10")
    start = loop.time()
    await asyncio.sleep(0.25)
    cnt.set_value(4, timestamp=TS + 10)
    cnt.set_value(5, timestamp=TS + 11)
    await peer.expect(status_line(TS + 11, "cnt", "nominal", "5"))
    assert loop.time() - start == pytest.approx(1.0)
    await peer.expect(status_line(TS + 11, "cnt", "nominal", "5"))
    assert loop.time() - start == pytest.approx(11.0)


async def test_differential_rate(server: Server, peer: ScriptedPeer) -> None:
    loop = asyncio.get_running_loop()
    cnt = server.sensors["cnt"]
    await peer.request(b"?sensor-sampling cnt differential-rate 2 1 5")
    start = loop.time()
    cnt.set_value(5, timestamp=TS + 10)  # exactly D: not a change
    await asyncio.sleep(2)
    cnt.set_value(6, timestamp=TS + 11)
    await peer.expect(status_line(TS + 11, "cnt", "nominal", "6"))
    assert loop.time() - start == pytest.approx(2.0)
    await peer.expect(status_line(TS + 11, "cnt", "nominal", "6"))
    assert loop.time() - start == pytest.approx(7.0)


async def test_none_stops_updates(server: Server, peer: ScriptedPeer) -> None:
    cnt = server.sensors["cnt"]
    await peer.request(b"?sensor-sampling cnt period 1")
    assert await peer.request(b"?sensor-sampling cnt none") == [b"!sensor-sampling ok cnt none"]
    assert cnt._observers == ()
    await asyncio.sleep(10)
    cnt.value = 10
    await no_more_lines(peer)


async def test_replace_strategy(server: Server, peer: ScriptedPeer) -> None:
    cnt = server.sensors["cnt"]
    await peer.request(b"?sensor-sampling cnt period 1")
    lines = await peer.request(b"?sensor-sampling cnt event")
    assert lines == [status_line(TS, "cnt", "nominal", "3"), b"!sensor-sampling ok cnt event"]
    assert len(cnt._observers) == 1
    await asyncio.sleep(5)
    await no_more_lines(peer)


async def test_bulk(server: Server, peer: ScriptedPeer) -> None:
    lines = await peer.request(b"?sensor-sampling cnt,temp,mode auto")
    assert lines == [
        status_line(TS, "cnt", "nominal", "3"),
        status_line(TS + 1, "temp", "warn", "21.5"),
        status_line(TS + 2, "mode", "nominal", "run-fast"),
        b"!sensor-sampling ok cnt,temp,mode auto",
    ]
    assert await peer.request(b"?sensor-sampling cnt,temp none") == [
        b"!sensor-sampling ok cnt,temp none"
    ]
    assert await peer.request(b"?sensor-sampling mode") == [b"!sensor-sampling ok mode auto"]


async def test_sampling_clear(server: Server, peer: ScriptedPeer) -> None:
    await peer.request(b"?sensor-sampling cnt,temp period 1")
    assert await peer.request(b"?sensor-sampling-clear") == [b"!sensor-sampling-clear ok"]
    assert all(sensor._observers == () for sensor in server.sensors.values())
    await asyncio.sleep(5)
    await no_more_lines(peer)


async def test_per_client(server: Server, peer: ScriptedPeer) -> None:
    other = await connect(server)
    try:
        await peer.expect(re.compile(rb"#client-connected .*"))
        await other.request(b"?sensor-sampling cnt event")
        assert await peer.request(b"?sensor-sampling cnt") == [b"!sensor-sampling ok cnt none"]
        server.sensors["cnt"].set_value(9, timestamp=TS + 20)
        await other.expect(status_line(TS + 20, "cnt", "nominal", "9"))
        await no_more_lines(peer)
        await other.close()
        await peer.request(b"?watchdog")  # the server has seen the disconnect by now
        assert server.sensors["cnt"]._observers == ()
    finally:
        await other.close()


# -- sensor set changes ---------------------------------------------------------------------


async def test_interface_changed_coalesced(server: Server, peer: ScriptedPeer) -> None:
    for i in range(3):
        server.sensors.add(Sensor(int, f"new{i}"))
    server.sensors.remove(server.sensors["new0"])
    await peer.expect(b"#interface-changed sensor-list")
    await no_more_lines(peer)
    server.sensors.remove(server.sensors["new1"])
    await peer.expect(b"#interface-changed sensor-list")
    await no_more_lines(peer)


async def test_removed_sensor_releases_samplers(server: Server, peer: ScriptedPeer) -> None:
    cnt = server.sensors["cnt"]
    await peer.request(b"?sensor-sampling cnt period 1")
    server.sensors.remove(cnt)
    await peer.expect(b"#interface-changed sensor-list")
    assert cnt._observers == ()
    await asyncio.sleep(5)
    cnt.value = 1
    await no_more_lines(peer)
    assert await peer.request(b"?sensor-sampling cnt") == [
        b"!sensor-sampling fail Unknown\\_sensor\\_'cnt'"
    ]


async def test_replaced_sensor(server: Server, peer: ScriptedPeer) -> None:
    await peer.request(b"?sensor-sampling cnt event")
    new: Sensor[int] = Sensor(int, "cnt")
    server.sensors.add(new)
    await peer.expect(b"#interface-changed sensor-list")
    assert await peer.request(b"?sensor-sampling cnt") == [b"!sensor-sampling ok cnt none"]


async def test_disconnect_releases_samplers(server: Server) -> None:
    peer = await connect(server)
    await peer.request(b"?sensor-sampling cnt,temp,name period 1")
    await peer.close()
    for _ in range(10):
        await asyncio.sleep(0)
    assert all(sensor._observers == () for sensor in server.sensors.values())


# -- bulk subscription at scale -------------------------------------------------------------


async def test_bulk_initial_burst_not_slow_client() -> None:
    server = Server("127.0.0.1", 0, max_backlog=2000)
    names = [f"s{i:04d}" for i in range(500)]
    for name in names:
        server.sensors.add(Sensor(int, name))
    async with running(server):
        peer = await connect(server)
        lines = await peer.request(b"?sensor-sampling " + ",".join(names).encode() + b" auto")
        assert len(lines) == 501
        assert lines[-1].startswith(b"!sensor-sampling ok s0000,s0001,")
        await peer.close()


async def test_bulk_yields_to_other_clients() -> None:
    server = Server("127.0.0.1", 0)
    names = [f"s{i:05d}" for i in range(2000)]
    for name in names:
        server.sensors.add(Sensor(int, name))
    async with running(server):
        bulk = await connect(server)
        other = await connect(server)
        await bulk.expect(re.compile(rb"#client-connected .*"))
        await bulk.send(b"?sensor-sampling " + ",".join(names).encode() + b" event")
        await other.send(b"?watchdog")
        await other.expect(b"!watchdog ok")
        # The watchdog was answered while the bulk request was still being applied.
        subscribed = sum(len(sensor._observers) for sensor in server.sensors.values())
        assert 0 < subscribed < len(names)
        lines = await bulk.readlines(len(names) + 1)
        assert lines[-1].endswith(b" event")
        await bulk.close()
        await other.close()


async def test_disconnect_during_bulk_releases_everything() -> None:
    server = Server("127.0.0.1", 0)
    names = [f"s{i:05d}" for i in range(1000)]
    for name in names:
        server.sensors.add(Sensor(int, name))
    async with running(server):
        peer = await connect(server)
        await peer.send(b"?sensor-sampling " + ",".join(names).encode() + b" period 1")
        await peer.readline()  # the request is being applied
        peer.writer.transport.abort()
        await asyncio.sleep(5)
        assert not server._connections
        assert all(sensor._observers == () for sensor in server.sensors.values())
        await peer.close()


# -- module-level helpers -------------------------------------------------------------------


def test_status_cache_shares_bytes() -> None:
    cache = StatusCache()
    sensor: Sensor[int] = Sensor(int, "x y")
    sensor.set_value(5, timestamp=1.5)
    first = cache.get(sensor, sensor.reading)
    assert first == b"#sensor-status 1.5 1 x\\_y nominal 5\n"
    assert cache.get(sensor, sensor.reading) is first
    assert cache.get(sensor, Reading(1.5, Status.NOMINAL, 5)) is not first
    cache.discard(sensor)
    cache.discard(sensor)


async def test_connection_helpers(server: Server, peer: ScriptedPeer) -> None:
    conn = server.connections[0]
    cnt = server.sensors["cnt"]
    assert conn.get_sampler(cnt) is None
    loop = asyncio.get_running_loop()
    sampler = SensorSampler.factory(
        cnt, lambda s, r: conn.sensor_update(s, r), loop, SensorSampler.Strategy.EVENT
    )
    conn.set_sampler(cnt, sampler)
    assert conn.get_sampler(cnt) is sampler
    await peer.expect(status_line(TS, "cnt", "nominal", "3"))
    conn.set_sampler(cnt, None)
    assert sampler is not None and sampler.closed
    assert conn.get_sampler(cnt) is None


# -- model-based test: what a client sees is what the strategy model predicts ---------------

STRATEGIES = [
    ("none",),
    ("auto",),
    ("event",),
    ("period", "0.5"),
    ("period", "1"),
    ("event-rate", "0.5", "2"),
    ("event-rate", "0", "1"),
    ("differential", "1"),
    ("differential-rate", "1", "0.5", "2"),
]


class SubscriptionModel:
    """Independent statement of the sampling rules (katcp-protocol §7.2) for one sensor."""

    def __init__(self, args: Tuple[str, ...], reading: Reading[int], now: float) -> None:
        kind, params = args[0], [float(p) for p in args[1:]]
        self.always = kind == "auto"
        self.diff: Optional[float] = params[0] if kind.startswith("differential") else None
        timing = params[1:] if kind == "differential-rate" else params
        self.longest: Optional[float]
        if kind == "period":
            self.shortest, self.longest = params[0], params[0]
        elif kind in ("event-rate", "differential-rate"):
            self.shortest, self.longest = timing[0], timing[1]
        else:
            self.shortest, self.longest = 0.0, None
        self.sent: List[Reading[int]] = []
        self.send(reading, now, now)

    def send(self, reading: Reading[int], when: float, now: float) -> None:
        self.sent.append(reading)
        self.last = reading
        self.last_time = when
        self.pending = False
        self.deadline = None if self.longest is None else max(now, when + self.longest)

    def update(self, reading: Reading[int], now: float) -> None:
        if self.pending:
            return
        changed = (
            self.always
            or reading.status != self.last.status
            or (self.diff is None and reading.value != self.last.value)
            or (self.diff is not None and abs(reading.value - self.last.value) > self.diff)
        )
        if not changed:
            return
        if now >= self.last_time + self.shortest:
            self.send(reading, now, now)
        else:
            self.pending = True
            self.deadline = self.last_time + self.shortest


class SamplingMachine(RuleBasedStateMachine):
    """Interleave sensor updates, strategy changes, sensor removal and time."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = async_solipsism.EventLoop()
        self.server = Server("127.0.0.1", 0)
        self.sensor_objs = {name: Sensor(int, name) for name in ("a", "b")}
        for sensor in self.sensor_objs.values():
            sensor.set_value(0, Status.NOMINAL, 1000.0)
            self.server.sensors.add(sensor)
        self.stamp = 1000.0
        self.models: Dict[str, SubscriptionModel] = {}
        self.sent_before: Dict[str, List[Reading[int]]] = {"a": [], "b": []}
        self.seen: Dict[str, List[Tuple[float, str, int]]] = {"a": [], "b": []}
        self.peer = self.run(self._start())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _start(self) -> ScriptedPeer:
        await self.server.start()
        return await connect(self.server)

    def _record(self, lines: List[bytes]) -> None:
        for line in lines:
            if line.startswith(b"#sensor-status "):
                _, ts, _, name, status, value = line.split(b" ")
                self.seen[name.decode()].append((float(ts), status.decode(), int(value)))

    def _barrier(self) -> None:
        self._record(self.run(self.peer.request(b"?watchdog")))

    def _expected(self, name: str) -> List[Tuple[float, str, int]]:
        readings = list(self.sent_before[name])
        if name in self.models:
            readings += self.models[name].sent
        return [(r.timestamp, r.status.name.lower(), r.value) for r in readings]

    def _close_model(self, name: str) -> None:
        model = self.models.pop(name, None)
        if model is not None:
            self.sent_before[name] += model.sent

    @rule(
        name=st.sampled_from(["a", "b"]),
        value=st.integers(0, 3),
        status=st.sampled_from([Status.NOMINAL, Status.WARN]),
    )
    def set_value(self, name: str, value: int, status: Sensor.Status) -> None:
        self.stamp += 1
        sensor = self.sensor_objs[name]
        sensor.set_value(value, status, self.stamp)
        if name in self.models:
            self.models[name].update(sensor.reading, self.loop.time())

    @rule(dt=st.sampled_from([0.25, 0.5, 1.0, 2.5]))
    def advance(self, dt: float) -> None:
        target = self.loop.time() + dt
        while True:
            due = [
                (model.deadline, name)
                for name, model in self.models.items()
                if model.deadline is not None and model.deadline <= target
            ]
            if not due:
                break
            when, name = min(due)
            model = self.models[name]
            model.send(self.sensor_objs[name].reading, when, when)
        self.run(asyncio.sleep(dt))

    @rule(name=st.sampled_from(["a", "b"]), strategy=st.sampled_from(STRATEGIES))
    def set_strategy(self, name: str, strategy: Tuple[str, ...]) -> None:
        line = " ".join(("?sensor-sampling", name, *strategy)).encode()
        lines = self.run(self.peer.request(line))
        self._record(lines)
        present = name in self.server.sensors
        assert lines[-1].startswith(b"!sensor-sampling ok" if present else b"!sensor-sampling fail")
        if present:
            self._close_model(name)
            if strategy[0] != "none":
                self.models[name] = SubscriptionModel(
                    strategy, self.sensor_objs[name].reading, self.loop.time()
                )

    @rule(name=st.sampled_from(["a", "b"]))
    def remove_sensor(self, name: str) -> None:
        self.server.sensors.discard(self.sensor_objs[name])
        self._close_model(name)

    @rule(name=st.sampled_from(["a", "b"]))
    def add_sensor(self, name: str) -> None:
        self.server.sensors.add(self.sensor_objs[name])

    @invariant()
    def updates_match_model(self) -> None:
        self._barrier()
        for name in ("a", "b"):
            assert self.seen[name] == self._expected(name), name

    def teardown(self) -> None:
        async def stop() -> None:
            await self.peer.close()
            await self.server.stop()

        self.run(stop())
        for sensor in self.sensor_objs.values():
            assert sensor._observers == ()
        self.loop.close()


TestSamplingMachine = SamplingMachine.TestCase
TestSamplingMachine.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)


async def test_client_connection_methods(server: Server, peer: ScriptedPeer) -> None:
    conn = server.connections[0]
    cnt = server.sensors["cnt"]
    assert conn.get_sampler(cnt) is None
    assert isinstance(conn.samplers_lock, asyncio.Lock)
    assert conn.samplers_lock is conn.samplers_lock
    loop = asyncio.get_running_loop()
    sampler = SensorSampler.factory(cnt, conn.sensor_update, loop, SensorSampler.Strategy.EVENT)
    conn.set_sampler(cnt, sampler)
    assert conn.get_sampler(cnt) is sampler
    await peer.expect(status_line(TS, "cnt", "nominal", "3"))
    assert await peer.request(b"?sensor-sampling cnt") == [b"!sensor-sampling ok cnt event"]
    conn.set_sampler(cnt, None)
    assert sampler is not None and sampler.closed


# -- the sensor part of examples/example_server.py ------------------------------------------


def load_example_server() -> Any:
    path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "examples",
        "example_server.py",
    )
    spec = importlib.util.spec_from_file_location("example_server_for_sensors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_example_server_sensors() -> None:
    example = load_example_server()
    server = example.SignalGenerator("127.0.0.1", 0)
    async with running(server):
        updater = asyncio.ensure_future(server.update_sensors(interval=1.0))
        try:
            peer = await connect(server)
            lines = await peer.request(b"?sensor-list")
            listed = [line.split(b" ") for line in lines if line.startswith(b"#sensor-list ")]
            types = {words[1]: words[4] for words in listed}
            assert set(types.values()) == {
                b"integer",
                b"float",
                b"boolean",
                b"string",
                b"discrete",
                b"address",
                b"timestamp",
            }
            temperature = [line for line in lines if line.startswith(b"#sensor-list temperature ")]
            assert temperature[0].endswith(b" float 10.0 50.0 0.0 70.0")
            names = b",".join(types)
            lines = await peer.request(b"?sensor-sampling " + names + b" auto")
            assert lines[-1] == b"!sensor-sampling ok " + names + b" auto"
            await asyncio.sleep(3.5)
            lines = await peer.request(b"?sensor-value uptime")
            values = [line for line in lines if line.startswith(b"#sensor-value")]
            assert len(values) == 1
            assert re.fullmatch(rb"#sensor-value \S+ 1 uptime nominal 3", values[0])
            seen = {line.split(b" ")[3] for line in lines if line.startswith(b"#sensor-status ")}
            assert {b"temperature", b"device-status", b"uptime", b"frequency"} <= seen
            await peer.close()
        finally:
            updater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await updater
