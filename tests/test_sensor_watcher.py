"""Sensor watchers: mirroring a real DeviceServer, and races against a scripted peer."""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import re
from typing import Any, AsyncIterator, List, Optional, Sequence, Set, Tuple, Union

import async_solipsism
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from aiokatcp import (
    AbstractSensorWatcher,
    Address,
    Client,
    Sensor,
    SensorWatcher,
    SyncState,
    Timestamp,
)
from aiokatcp.exceptions import FailReply
from aiokatcp.server import DeviceServer
from aiokatcp.testing import PeerServer, ScriptedPeer, client_for, running, wait_for_sensor


class Mode(enum.Enum):
    IDLE = 1
    RUN_FAST = 2


class Other(enum.Enum):
    A = 1
    B = 2


class DummyServer(DeviceServer):
    VERSION = "dummy-1.0"
    BUILD_STATE = "dummy-1.0.0"
    AUTO_INTERFACE_CHANGED = True  # sensors added/removed below are announced

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0)
        self.sensors.add(Sensor(int, "int-sensor", "An integer", "count", default=3))
        self.sensors.add(Sensor(float, "float-sensor", "A float", "degC", default=2.5))
        self.sensors.add(Sensor(bool, "bool-sensor", "A boolean", default=True))
        self.sensors.add(Sensor(Mode, "mode", "A discrete", default=Mode.RUN_FAST))
        self.sensors.add(Sensor(bytes, "string-sensor", "A string", default=b"hello world"))
        self.sensors.add(
            Sensor(Address, "addr", "An address", default=Address(ipaddress.ip_address("::1"), 80))
        )
        self.sensors.add(Sensor(Timestamp, "ts", "A timestamp", "s", default=Timestamp(1.5e9)))
        for sensor in self.sensors.values():
            sensor.set_value(sensor.value, Sensor.Status.NOMINAL, 1234567890.0)


@pytest.fixture
async def server() -> AsyncIterator[DummyServer]:
    async with running(DummyServer()) as server:
        yield server


@pytest.fixture
async def client(server: DummyServer) -> AsyncIterator[Client]:
    async with client_for(server) as client:
        yield client


@pytest.fixture
async def peer_mirror(peers: PeerServer) -> AsyncIterator[SensorWatcher]:
    """A SensorWatcher on a client of the scripted peer server (closed after the test)."""
    client = Client("127.0.0.1", peers.port)
    mirror = SensorWatcher(client)
    client.add_sensor_watcher(mirror)
    yield mirror
    client.close()
    await client.wait_closed()


# -- mirroring a real server ---------------------------------------------------------------------


async def test_mirrors_all_types(server: DummyServer, client: Client) -> None:
    watcher = SensorWatcher(client, enum_types=[Other, Mode])
    client.add_sensor_watcher(watcher)
    await asyncio.wait_for(watcher.synced.wait(), 10)
    assert watcher.state is SyncState.SYNCED
    assert set(watcher.sensors) == set(server.sensors)
    for name, remote in server.sensors.items():
        local = watcher.sensors[name]
        assert local.reading == remote.reading, name
        assert local.description == remote.description
        assert local.units == remote.units
        assert local.type_name == remote.type_name
    assert watcher.sensors["mode"].stype is Mode
    assert watcher.sensors["string-sensor"].value == b"hello world"


async def test_updates_and_synthesised_enum(server: DummyServer, client: Client) -> None:
    watcher = SensorWatcher(client)
    client.add_sensor_watcher(watcher)
    await watcher.synced.wait()
    mode = watcher.sensors["mode"]
    assert issubclass(mode.stype, enum.Enum) and mode.stype is not Mode
    assert [m.katcp_value for m in mode.stype] == [b"idle", b"run-fast"]  # type: ignore[attr-defined]
    server.sensors["mode"].value = Mode.IDLE
    server.sensors["int-sensor"].set_value(42, Sensor.Status.WARN, 1700000000.0)
    await wait_for_sensor(watcher.sensors["int-sensor"], 42, timeout=10)
    assert watcher.sensors["int-sensor"].reading.status is Sensor.Status.WARN
    assert watcher.sensors["int-sensor"].timestamp == 1700000000.0
    await wait_for_sensor(mode, mode.stype.ENUM0, timeout=10)  # type: ignore[attr-defined]


async def test_interface_changed_resync(server: DummyServer, client: Client) -> None:
    watcher = SensorWatcher(client)
    client.add_sensor_watcher(watcher)
    await watcher.synced.wait()
    server.sensors.add(Sensor(int, "new-sensor", "Added later", default=7))
    del server.sensors["float-sensor"]
    for _ in range(100):
        if "new-sensor" in watcher.sensors and watcher.synced.is_set():
            break
        await asyncio.sleep(0.01)
    assert "new-sensor" in watcher.sensors
    assert "float-sensor" not in watcher.sensors
    assert watcher.sensors["new-sensor"].value == 7
    server.sensors["new-sensor"].value = 8
    await wait_for_sensor(watcher.sensors["new-sensor"], 8, timeout=10)


async def test_disconnect_marks_unreachable_and_resyncs(server: DummyServer) -> None:
    port = server.port
    client = Client("127.0.0.1", port)
    watcher = SensorWatcher(client)
    client.add_sensor_watcher(watcher)  # before the client is connected
    try:
        await asyncio.wait_for(watcher.synced.wait(), 10)
        await server.stop()
        await client.wait_disconnected()
        assert watcher.state is SyncState.DISCONNECTED
        assert not watcher.synced.is_set()
        assert all(s.status is Sensor.Status.UNREACHABLE for s in watcher.sensors.values())
        assert watcher.sensors["int-sensor"].value == 3  # the last value is kept
        server2 = DummyServer()
        server2.port = port
        server2.sensors["int-sensor"].value = 99
        await server2.start()
        try:
            await asyncio.wait_for(watcher.synced.wait(), 120)
            assert watcher.sensors["int-sensor"].value == 99
            assert watcher.sensors["int-sensor"].status is Sensor.Status.NOMINAL
        finally:
            client.close()
            await client.wait_closed()
            await server2.stop()
    finally:
        client.close()
        await client.wait_closed()
    assert watcher.state is SyncState.CLOSED


class RenamingWatcher(SensorWatcher):
    def filter(self, name: str, description: str, units: str, type_name: str, *args: bytes) -> bool:
        return type_name in ("integer", "float")

    def rewrite_name(self, name: str) -> Union[str, Sequence[str]]:
        if name == "int-sensor":
            return ["copy1.int", "copy2.int"]
        return "remote." + name

    def set_sensor_value(
        self, sensor: Sensor[Any], value: Any, status: Sensor.Status, timestamp: float
    ) -> None:
        if sensor.name == "copy2.int":
            value *= 10
        super().set_sensor_value(sensor, value, status, timestamp)


async def test_filter_rewrite_and_hook(server: DummyServer, client: Client) -> None:
    watcher = RenamingWatcher(client)
    client.add_sensor_watcher(watcher)
    await watcher.synced.wait()
    assert set(watcher.sensors) == {"copy1.int", "copy2.int", "remote.float-sensor"}
    assert watcher.sensors["copy1.int"].value == 3
    assert watcher.sensors["copy2.int"].value == 30
    server.sensors["int-sensor"].value = 5
    await wait_for_sensor(watcher.sensors["copy2.int"], 50, timeout=10)
    assert watcher.sensors["copy1.int"].value == 5


class RecordingWatcher(AbstractSensorWatcher):
    def __init__(self, wanted: Sequence[str] = ()) -> None:
        self.events: List[Tuple[Any, ...]] = []
        self.wanted = set(wanted)

    def filter(self, name: str, description: str, units: str, type_name: str, *args: bytes) -> bool:
        return not self.wanted or name in self.wanted

    def sensor_added(
        self, name: str, description: str, units: str, type_name: str, *args: bytes
    ) -> None:
        self.events.append(("added", name, type_name, args))

    def sensor_removed(self, name: str) -> None:
        self.events.append(("removed", name))

    def sensor_updated(
        self, name: str, value: bytes, status: Sensor.Status, timestamp: float
    ) -> None:
        self.events.append(("updated", name, value, status))

    def batch_start(self) -> None:
        self.events.append(("start",))

    def batch_stop(self) -> None:
        self.events.append(("stop",))

    def state_updated(self, state: SyncState) -> None:
        self.events.append(("state", state))


async def test_event_order_for_watcher_added_when_connected(
    server: DummyServer, client: Client
) -> None:
    watcher = RecordingWatcher(["int-sensor", "mode"])
    client.add_sensor_watcher(watcher)
    for _ in range(100):
        if ("state", SyncState.SYNCED) in watcher.events:
            break
        await asyncio.sleep(0.01)
    nominal = Sensor.Status.NOMINAL
    assert watcher.events == [
        ("state", SyncState.SYNCING),
        ("start",),
        ("added", "int-sensor", "integer", ()),
        ("added", "mode", "discrete", (b"idle", b"run-fast")),
        ("stop",),
        ("start",),
        ("updated", "int-sensor", b"3", nominal),
        ("stop",),
        ("start",),
        ("updated", "mode", b"run-fast", nominal),
        ("stop",),
        ("state", SyncState.SYNCED),
    ]
    # Removing the watcher stops its updates.
    client.remove_sensor_watcher(watcher)
    count = len(watcher.events)
    server.sensors["int-sensor"].value = 4
    await asyncio.sleep(1)
    assert len(watcher.events) == count


async def test_two_watchers_share_one_subscription(server: DummyServer, client: Client) -> None:
    w1 = SensorWatcher(client)
    client.add_sensor_watcher(w1)
    await w1.synced.wait()
    w2 = RenamingWatcher(client)
    client.add_sensor_watcher(w2)
    await w2.synced.wait()
    server.sensors["int-sensor"].value = 11
    await wait_for_sensor(w1.sensors["int-sensor"], 11, timeout=10)
    await wait_for_sensor(w2.sensors["copy2.int"], 110, timeout=10)


async def test_unsupported_type_skipped(server: DummyServer, client: Client) -> None:
    class NoAddress(SensorWatcher):
        SENSOR_TYPES = {k: v for k, v in SensorWatcher.SENSOR_TYPES.items() if k != "address"}

    watcher = NoAddress(client)
    client.add_sensor_watcher(watcher)
    await watcher.synced.wait()
    assert "addr" not in watcher.sensors
    assert "int-sensor" in watcher.sensors


# -- Client.sensor_reading / sensor_value --------------------------------------------------------


async def test_sensor_reading_and_value(server: DummyServer, client: Client) -> None:
    reading = await client.sensor_reading("float-sensor")
    assert reading.value == 2.5 and reading.status is Sensor.Status.NOMINAL
    assert reading.timestamp == 1234567890.0
    assert await client.sensor_value("mode") == b"run-fast"
    assert await client.sensor_value("mode", Mode) is Mode.RUN_FAST
    assert await client.sensor_value("addr") == Address(ipaddress.ip_address("::1"), 80)
    assert await client.sensor_value("ts") == Timestamp(1.5e9)
    server.sensors["int-sensor"].set_value(1, Sensor.Status.FAILURE)
    with pytest.raises(
        ValueError, match=f"^Reading for int-sensor has status {Sensor.Status.FAILURE}$"
    ):
        await client.sensor_value("int-sensor")
    with pytest.raises(FailReply):
        await client.sensor_reading("no-such-sensor")
    with pytest.raises(FailReply, match="4 sensors"):
        await client.sensor_reading("/sensor/", int)


# -- races against a scripted peer ---------------------------------------------------------------

SYNC_STEPS = 6


async def serve_sync(
    peer: ScriptedPeer,
    stop_at: Optional[int],
    interface_changed_at: int = -1,
    relist: bool = False,
) -> int:
    """Play the server side of one watcher sync (bulk flag on); stop at step `stop_at`.

    Returns the step reached. Steps: 0 before the list reply, 1 in the middle of the
    list informs, 2 after the list reply, 3 in the middle of the initial updates,
    4 after the sampling reply, 5 after the watcher is synced. With `relist` the
    sensors are already subscribed, so the sync ends with the list reply.
    """

    async def step(n: int) -> bool:
        if n == interface_changed_at:
            await peer.send(b"#interface-changed sensor-list")
        return n == stop_at

    line = await peer.readline()
    mid = re.fullmatch(rb"\?sensor-list\[(\d+)\]", line)
    assert mid, line
    m = mid.group(1)
    if await step(0):
        return 0
    await peer.send(b"#sensor-list[%s] a A \\@ integer" % m)
    if await step(1):
        return 1
    await peer.send(b"#sensor-list[%s] b B \\@ float" % m, b"!sensor-list[%s] ok 2" % m)
    if await step(2) or relist:
        return 2
    line = await peer.readline()
    mid = re.fullmatch(rb"\?sensor-sampling\[(\d+)\] a,b auto", line)
    assert mid, line
    m = mid.group(1)
    await peer.send(b"#sensor-status 100.0 1 a nominal 1")
    if await step(3):
        return 3
    await peer.send(b"#sensor-status 100.0 1 b warn 2.5", b"!sensor-sampling[%s] ok a,b auto" % m)
    if await step(4):
        return 4
    await asyncio.sleep(0.1)
    await step(5)
    return 5


def check_batches(events: List[Tuple[Any, ...]]) -> None:
    depth = 0
    for event in events:
        if event[0] == "start":
            assert depth == 0, events
            depth += 1
        elif event[0] == "stop":
            assert depth == 1, events
            depth -= 1
        elif event[0] in ("added", "removed", "updated"):
            assert depth == 1, events
    assert depth == 0


@pytest.mark.parametrize("stop_at", range(SYNC_STEPS))
async def test_disconnect_at_each_sync_step(peers: PeerServer, stop_at: int) -> None:
    client = Client("127.0.0.1", peers.port)
    watcher = RecordingWatcher()
    mirror = SensorWatcher(client)
    client.add_sensor_watcher(watcher)
    client.add_sensor_watcher(mirror)
    try:
        peer = await peers.accept()
        assert await serve_sync(peer, stop_at) == stop_at
        await peer.close()
        await client.wait_disconnected()
        assert mirror.state is SyncState.DISCONNECTED
        assert all(s.status is Sensor.Status.UNREACHABLE for s in mirror.sensors.values())
        peer = await peers.accept()
        assert await serve_sync(peer, None) == 5
        await asyncio.wait_for(mirror.synced.wait(), 10)
        assert mirror.sensors["a"].value == 1
        assert mirror.sensors["b"].reading.status is Sensor.Status.WARN
        # Nothing more happens: no further sync, no stray request.
        await asyncio.sleep(30)
        assert mirror.state is SyncState.SYNCED
        await peer.send(b"#sensor-status 200.0 1 a nominal 5")
        await wait_for_sensor(mirror.sensors["a"], 5, timeout=10)
    finally:
        client.close()
        await client.wait_closed()
    check_batches(watcher.events)
    states = [e[1] for e in watcher.events if e[0] == "state"]
    # Added while disconnected: the first state call is SYNCING (as in 2.x).
    assert states[0] is SyncState.SYNCING
    assert SyncState.DISCONNECTED in states
    assert states[-2:] == [SyncState.SYNCED, SyncState.CLOSED]
    assert SyncState.SYNCING in states


@pytest.mark.parametrize("changed_at", range(SYNC_STEPS))
async def test_interface_changed_at_each_sync_step(peers: PeerServer, changed_at: int) -> None:
    client = Client("127.0.0.1", peers.port)
    watcher = RecordingWatcher()
    mirror = SensorWatcher(client)
    client.add_sensor_watcher(watcher)
    client.add_sensor_watcher(mirror)
    try:
        peer = await peers.accept()
        await serve_sync(peer, None, interface_changed_at=changed_at)
        # The change asks for exactly one more sync, which completes; the sensors are
        # unchanged, so nothing is subscribed again.
        await serve_sync(peer, None, relist=True)
        await asyncio.wait_for(mirror.synced.wait(), 10)
        await asyncio.sleep(30)
        assert mirror.state is SyncState.SYNCED
        assert set(mirror.sensors) == {"a", "b"}
    finally:
        client.close()
        await client.wait_closed()
    check_batches(watcher.events)


async def test_without_bulk_flag_subscribes_one_by_one(
    peers: PeerServer, peer_mirror: SensorWatcher
) -> None:
    mirror = peer_mirror
    peer = await peers.accept(b"#version-connect katcp-protocol 5.0-MI")
    await peer.expect(b"?sensor-list[1]")
    await peer.send(
        b"#sensor-list[1] a A \\@ integer",
        b"#sensor-list[1] b B \\@ widget",  # not mirrored (unknown type), still subscribed
        b"#sensor-list[1] c C \\@ discrete x y",
        b"!sensor-list[1] ok 3",
    )
    lines = sorted(await peer.readlines(3))
    assert lines == [
        b"?sensor-sampling[2] a auto",
        b"?sensor-sampling[3] b auto",
        b"?sensor-sampling[4] c auto",
    ]
    await peer.send(
        b"#sensor-status 5.0 1 c nominal y",
        b"#sensor-status 5.0 2 a error 7 b nominal nominal",
        b"!sensor-sampling[2] ok a auto",
        b"!sensor-sampling[3] fail no\\_such\\_sensor",  # logged, not fatal
        b"!sensor-sampling[4] ok c auto",
    )
    await asyncio.wait_for(mirror.synced.wait(), 10)
    assert set(mirror.sensors) == {"a", "c"}
    assert mirror.sensors["a"].reading.value == 7
    assert mirror.sensors["a"].reading.status is Sensor.Status.ERROR
    assert mirror.sensors["c"].value.katcp_value == b"y"
    # Bad updates are logged and ignored.
    await peer.send(
        b"#sensor-status 6.0 1 a nominal not-a-number",
        b"#sensor-status 6.0 1 a bogus-status 8",
        b"#sensor-status 6.0 2 a nominal 9",
        b"#sensor-status 6.0 1 a unknown \\@",
        b"#sensor-status 7.0 1 a nominal 10",
    )
    await wait_for_sensor(mirror.sensors["a"], 10, timeout=10)
    assert mirror.sensors["a"].timestamp == 7.0


async def test_v4_timestamps_in_milliseconds(peers: PeerServer, peer_mirror: SensorWatcher) -> None:
    mirror = peer_mirror
    peer = await peers.accept(b"#version dbe-2.1")
    await peer.expect(b"?sensor-list")
    await peer.send(b"#sensor-list a A \\@ integer 0 10", b"!sensor-list ok 1")
    await peer.expect(b"?sensor-sampling a auto")
    await peer.send(b"#sensor-status 1700000000123 1 a nominal 3", b"!sensor-sampling ok a auto")
    await asyncio.wait_for(mirror.synced.wait(), 10)
    assert mirror.sensors["a"].timestamp == pytest.approx(1700000000.123)


async def test_sync_failure_is_logged(
    peers: PeerServer, peer_mirror: SensorWatcher, caplog: pytest.LogCaptureFixture
) -> None:
    mirror = peer_mirror
    peer = await peers.accept()
    await peer.expect(b"?sensor-list[1]")
    await peer.send(b"!sensor-list[1] fail not\\_today")
    await asyncio.sleep(0.5)
    assert "not today" in caplog.text
    assert mirror.state is SyncState.SYNCING
    # An #interface-changed while waiting to retry retries at once.
    await peer.send(b"#interface-changed")
    await peer.expect(b"?sensor-list[2]")
    await peer.send(b"!sensor-list[2] ok 0")
    await asyncio.wait_for(mirror.synced.wait(), 10)


async def test_sync_failure_is_retried_with_backoff(
    peers: PeerServer, peer_mirror: SensorWatcher
) -> None:
    mirror = peer_mirror
    loop = asyncio.get_running_loop()
    peer = await peers.accept()
    await peer.expect(b"?sensor-list[1]")
    failed_at = loop.time()
    await peer.send(b"!sensor-list[1] fail busy")
    await peer.expect(b"?sensor-list[2]")
    # The client's back-off (default 1 s, doubling), randomised down by up to half.
    assert 0.5 <= loop.time() - failed_at <= 1.0
    failed_at = loop.time()
    await peer.send(b"!sensor-list[2] invalid busy")
    await peer.expect(b"?sensor-list[3]")
    assert 1.0 <= loop.time() - failed_at <= 2.0
    assert mirror.state is SyncState.SYNCING
    await peer.send(b"#sensor-list[3] a A \\@ integer", b"!sensor-list[3] ok 1")
    await peer.expect(b"?sensor-sampling[4] a auto")
    await peer.send(b"#sensor-status 1700000000.5 1 a nominal 7", b"!sensor-sampling[4] ok a auto")
    await asyncio.wait_for(mirror.synced.wait(), 10)
    assert mirror.sensors["a"].value == 7


# -- hypothesis: random interleavings of server changes, disconnects and watcher changes ---------


class _MachineServer(DeviceServer):
    VERSION = "machine-1.0"
    BUILD_STATE = "machine-1.0.0"
    AUTO_INTERFACE_CHANGED = True  # sensor-set changes are announced


NAMES = ["s0", "s1", "s2", "s3"]


class FilteredWatcher(SensorWatcher):
    """Mirrors the sensors in `only` (all if ``None``)."""

    def __init__(self, client: Client, only: Optional[Set[str]]) -> None:
        super().__init__(client)
        self.only = only

    def wants(self, name: str) -> bool:
        return self.only is None or name in self.only

    def filter(self, name: str, description: str, units: str, type_name: str, *args: bytes) -> bool:
        return self.wants(name)


class WatcherMachine(RuleBasedStateMachine):
    """Drives a real server and client on a private solipsism loop.

    Rules change the server's sensors, drop the connection, send
    ``#interface-changed``, add or remove watchers, or let the loop run a few
    steps (so every other rule lands at a different point of a sync). The
    ``settle`` rule (and teardown) then lets time pass and checks that every
    watcher converged to the server's sensors and stays synced.
    """

    def __init__(self) -> None:
        super().__init__()
        self.loop = async_solipsism.EventLoop()
        self.server = _MachineServer("127.0.0.1", 7147)
        self.run(self.server.start())
        self.client = Client("127.0.0.1", 7147, loop=self.loop)
        self.watchers: List[SensorWatcher] = []
        self.added = 0
        self.add_watcher(None)

    def run(self, aw: Any) -> Any:
        return self.loop.run_until_complete(aw)

    def call(self, func: Any, *args: Any) -> None:
        """Run a synchronous change from inside the loop, as application code would."""

        async def call() -> None:
            func(*args)

        self.run(call())

    @rule(name=st.sampled_from(NAMES), value=st.integers(-5, 5))
    def add_sensor(self, name: str, value: int) -> None:
        # Adds or replaces. A replacement is visible in ?sensor-list (a new description):
        # a server drops a replaced sensor's sampling, and a client can only tell that the
        # sensor must be subscribed again if its listing changed.
        self.added += 1
        sensor = Sensor(int, name, f"sensor {name} #{self.added}", default=value)
        self.call(self.server.sensors.add, sensor)

    @rule(name=st.sampled_from(NAMES))
    def remove_sensor(self, name: str) -> None:
        self.call(self.server.sensors.pop, name, None)

    @rule(name=st.sampled_from(NAMES), value=st.integers(-5, 5))
    def set_value(self, name: str, value: int) -> None:
        sensor = self.server.sensors.get(name)
        if sensor is not None:
            self.call(sensor.set_value, value)

    @rule()
    def disconnect(self) -> None:
        conn = self.client._conn
        if conn is not None:
            self.call(conn.abort)

    @rule()
    def interface_changed(self) -> None:
        self.call(self.server.mass_inform, "interface-changed")

    @rule(only=st.one_of(st.none(), st.sets(st.sampled_from(NAMES))))
    def add_watcher(self, only: Optional[Set[str]] = None) -> None:
        watcher = FilteredWatcher(self.client, only)
        self.call(self.client.add_sensor_watcher, watcher)
        self.watchers.append(watcher)

    @rule(index=st.integers(0, 3))
    def remove_watcher(self, index: int) -> None:
        if len(self.watchers) > 1:
            watcher = self.watchers.pop(index % len(self.watchers))
            self.call(self.client.remove_sensor_watcher, watcher)

    @rule(steps=st.integers(1, 8))
    def advance(self, steps: int) -> None:
        for _ in range(steps):
            self.run(asyncio.sleep(0))

    @rule()
    def settle(self) -> None:
        async def settle() -> None:
            await asyncio.sleep(5)  # reconnect back-off is at most 1 s here
            for watcher in self.watchers:
                await asyncio.wait_for(watcher.synced.wait(), 60)

        self.run(settle())
        expected = {name: sensor.reading for name, sensor in self.server.sensors.items()}
        for watcher in self.watchers:
            got = {name: sensor.reading for name, sensor in watcher.sensors.items()}
            assert got == {k: v for k, v in expected.items() if watcher.wants(k)}
        # Exactly the sensors some watcher wants are sampled for this client: no sampler
        # is left behind by removed watchers, replaced sensors or reconnects.
        for name in expected:
            reply, _ = self.run(self.client.request("sensor-sampling", name))
            wanted = any(watcher.wants(name) for watcher in self.watchers)
            assert reply[1] == (b"auto" if wanted else b"none"), name
        self.run(asyncio.sleep(30))
        assert all(w.state is SyncState.SYNCED for w in self.watchers)

    def teardown(self) -> None:
        try:
            self.settle()
        finally:
            self.client.close()
            self.run(self.client.wait_closed())
            self.run(self.server.stop())
            self.loop.close()


TestWatcherMachine = WatcherMachine.TestCase
TestWatcherMachine.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
