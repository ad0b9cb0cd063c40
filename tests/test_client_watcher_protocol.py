"""The sensor-watcher batch protocol of aiokatcp 2.x (api-contract §10.5), against a scripted peer.

Every test reads the exact requests the client sends, so "nothing else goes on the wire"
is checked by the next expected line.
"""

from __future__ import annotations

import asyncio
import unittest.mock
from typing import Any, List, Sequence, Tuple

from aiokatcp import AbstractSensorWatcher, Client, Sensor, SensorWatcher, SyncState
from helpers import PeerServer, ScriptedPeer

LIST_AB = (
    b"#sensor-list[1] a A \\@ integer",
    b"#sensor-list[1] b B \\@ float",
    b"!sensor-list[1] ok 2",
)


class Recorder(AbstractSensorWatcher):
    """Records every call, filter calls included."""

    def __init__(self, wanted: Sequence[str] = ()) -> None:
        self.events: List[Tuple[Any, ...]] = []
        self.wanted = set(wanted)
        self.synced = asyncio.Event()

    def filter(self, name: str, description: str, units: str, type_name: str, *args: bytes) -> bool:
        self.events.append(("filter", name))
        return not self.wanted or name in self.wanted

    def sensor_added(
        self, name: str, description: str, units: str, type_name: str, *args: bytes
    ) -> None:
        self.events.append(("added", name, description))

    def sensor_removed(self, name: str) -> None:
        self.events.append(("removed", name))

    def sensor_updated(
        self, name: str, value: bytes, status: Sensor.Status, timestamp: float
    ) -> None:
        self.events.append(("updated", name, value))

    def batch_start(self) -> None:
        self.events.append(("start",))

    def batch_stop(self) -> None:
        self.events.append(("stop",))

    def state_updated(self, state: SyncState) -> None:
        self.events.append(("state", state))
        if state is SyncState.SYNCED:
            self.synced.set()
        else:
            self.synced.clear()

    def take(self) -> List[Tuple[Any, ...]]:
        events, self.events = self.events, []
        return events


async def sync_ab(peer: ScriptedPeer) -> None:
    """Serve the first sync: sensors a and b, subscribed in bulk."""
    await peer.expect(b"?sensor-list[1]")
    await peer.send(*LIST_AB)
    await peer.expect(b"?sensor-sampling[2] a,b auto")
    await peer.send(
        b"#sensor-status 1.0 1 a nominal 1",
        b"#sensor-status 1.0 1 b nominal 2.5",
        b"!sensor-sampling[2] ok a,b auto",
    )


async def test_mock_watcher_and_syncing_before_wait_connected(
    peers: PeerServer, client: Client
) -> None:
    watcher = unittest.mock.Mock()
    client.add_sensor_watcher(watcher)  # disconnected: no state call, an empty batch
    watcher.state_updated.assert_not_called()
    assert [c[0] for c in watcher.method_calls] == ["batch_start", "batch_stop"]
    peer = await peers.accept()
    await client.wait_connected()
    watcher.state_updated.assert_called_once_with(SyncState.SYNCING)
    await sync_ab(peer)
    for _ in range(100):
        if watcher.state_updated.call_args == unittest.mock.call(SyncState.SYNCED):
            break
        await asyncio.sleep(0.01)
    assert watcher.state_updated.call_args == unittest.mock.call(SyncState.SYNCED)
    names = [c.args[0] for c in watcher.sensor_added.call_args_list]
    assert names == ["a", "b"]


async def test_one_batch_per_list_in_server_order(peers: PeerServer, client: Client) -> None:
    rec = Recorder(wanted=["a", "b", "c"])
    client.add_sensor_watcher(rec)
    peer = await peers.accept()
    await client.wait_connected()
    await sync_ab(peer)
    await rec.synced.wait()
    assert rec.take() == [
        ("start",),  # added while disconnected: an empty replay batch (as 2.3)
        ("stop",),
        ("state", SyncState.SYNCING),
        ("start",),
        ("filter", "a"),
        ("added", "a", "A"),
        ("filter", "b"),
        ("added", "b", "B"),
        ("stop",),
        ("start",),
        ("updated", "a", b"1"),
        ("stop",),
        ("start",),
        ("updated", "b", b"2.5"),
        ("stop",),
        ("state", SyncState.SYNCED),
    ]
    # Nothing changed: still one (empty) batch; unchanged sensors are not filtered again.
    await peer.send(b"#interface-changed sensor-list")
    await peer.expect(b"?sensor-list[3]")
    await peer.send(LIST_AB[0].replace(b"[1]", b"[3]"), LIST_AB[1].replace(b"[1]", b"[3]"))
    await peer.send(b"!sensor-list[3] ok 2")
    await rec.synced.wait()
    assert rec.take() == [
        ("state", SyncState.SYNCING),
        ("start",),
        ("stop",),
        ("state", SyncState.SYNCED),
    ]
    # New c (server order: c before b), a changed, b vanished: removed at the end;
    # only c and the changed a are subscribed again.
    await peer.send(b"#interface-changed sensor-list")
    await peer.expect(b"?sensor-list[4]")
    await peer.send(
        b"#sensor-list[4] c C \\@ integer",
        b"#sensor-list[4] a A2 \\@ integer",
        b"!sensor-list[4] ok 2",
    )
    await peer.expect(b"?sensor-sampling[5] c,a auto")
    await peer.send(b"!sensor-sampling[5] ok c,a auto")
    await rec.synced.wait()
    assert rec.take() == [
        ("state", SyncState.SYNCING),
        ("start",),
        ("filter", "c"),
        ("added", "c", "C"),
        ("filter", "a"),
        ("added", "a", "A2"),
        ("removed", "b"),
        ("stop",),
        ("state", SyncState.SYNCED),
    ]


async def test_filtered_out_after_change_is_removed(peers: PeerServer, client: Client) -> None:
    rec = Recorder(wanted=["a", "b"])
    client.add_sensor_watcher(rec)
    peer = await peers.accept()
    await client.wait_connected()
    await sync_ab(peer)
    await rec.synced.wait()
    rec.take()
    rec.wanted = {"b"}
    await peer.send(b"#interface-changed sensor-list")
    await peer.expect(b"?sensor-list[3]")
    await peer.send(
        b"#sensor-list[3] a A2 \\@ integer",
        b"#sensor-list[3] b B \\@ float",
        b"!sensor-list[3] ok 2",
    )
    await peer.expect(b"?sensor-sampling[4] a none")  # no longer wanted
    await peer.send(b"!sensor-sampling[4] ok a none")
    await rec.synced.wait()
    assert rec.take()[1:-1] == [("start",), ("filter", "a"), ("removed", "a"), ("stop",)]


async def test_remove_watcher_unsubscribes_without_relisting(
    peers: PeerServer, client: Client
) -> None:
    keep = Recorder(wanted=["a"])
    drop = Recorder()
    client.add_sensor_watcher(keep)
    client.add_sensor_watcher(drop)
    peer = await peers.accept()
    await client.wait_connected()
    await sync_ab(peer)
    await drop.synced.wait()
    client.remove_sensor_watcher(drop)
    await peer.expect(b"?sensor-sampling[3] b none")
    await peer.send(b"!sensor-sampling[3] ok b none")
    ping = asyncio.create_task(client.request("ping"))
    await peer.expect(b"?ping[4]")
    await peer.send(b"!ping[4] ok")
    await ping
    # A stray update for b is answered with none again, once for a burst.
    await peer.send(b"#sensor-status 2.0 1 b nominal 3.5", b"#sensor-status 2.1 1 b nominal 3.6")
    await peer.expect(b"?sensor-sampling[5] b none")
    await peer.send(b"!sensor-sampling[5] ok b none")
    client.remove_sensor_watcher(keep)
    await peer.expect(b"?sensor-sampling[6] a none")


async def test_watcher_added_to_live_client_replays_cache(
    peers: PeerServer, client: Client
) -> None:
    first = Recorder(wanted=["a"])
    client.add_sensor_watcher(first)
    peer = await peers.accept()
    await client.wait_connected()
    await peer.expect(b"?sensor-list[1]")
    await peer.send(*LIST_AB)
    await peer.expect(b"?sensor-sampling[2] a auto")
    await peer.send(b"#sensor-status 1.0 1 a nominal 1", b"!sensor-sampling[2] ok a auto")
    await first.synced.wait()
    # Same sensors: replayed from the cache in one batch, nothing on the wire.
    second = Recorder(wanted=["a"])
    client.add_sensor_watcher(second)
    assert second.take() == [  # as 2.3: the current state, then the replay
        ("state", SyncState.SYNCED),
        ("start",),
        ("filter", "a"),
        ("added", "a", "A"),
        ("updated", "a", b"1"),
        ("filter", "b"),
        ("stop",),
    ]
    # A watcher that wants b too: only b is subscribed.
    third = Recorder()
    client.add_sensor_watcher(third)
    assert third.events[0] == ("state", SyncState.SYNCED)
    assert third.events[-1] == ("state", SyncState.SYNCING)  # until b is subscribed
    await peer.expect(b"?sensor-sampling[3] b auto")
    await peer.send(b"#sensor-status 1.0 1 b nominal 2.5", b"!sensor-sampling[3] ok b auto")
    await third.synced.wait()
    assert ("updated", "b", b"2.5") in third.events
    # Nothing else was sent meanwhile: the next request gets the next id.
    task = asyncio.create_task(client.request("ping"))
    await peer.expect(b"?ping[4]")
    await peer.send(b"!ping[4] ok")
    await task


async def test_reconnect_resubscribes_everything(peers: PeerServer, client: Client) -> None:
    mirror = SensorWatcher(client)
    client.add_sensor_watcher(mirror)
    peer = await peers.accept()
    await client.wait_connected()
    await sync_ab(peer)
    await mirror.synced.wait()
    await peer.close()
    await client.wait_disconnected()
    assert mirror.sensors["a"].status is Sensor.Status.UNREACHABLE
    peer = await peers.accept()
    await peer.expect(b"?sensor-list[3]")
    await peer.send(*(line.replace(b"[1]", b"[3]") for line in LIST_AB))
    await peer.expect(b"?sensor-sampling[4] a,b auto")
    await peer.send(b"#sensor-status 3.0 1 a nominal 9", b"!sensor-sampling[4] ok a,b auto")
    await mirror.synced.wait()
    assert mirror.sensors["a"].value == 9


class AddedOnly(AbstractSensorWatcher):
    """Overrides only sensor_added (the default filter accepts everything)."""

    def __init__(self) -> None:
        self.added: List[str] = []

    def sensor_added(
        self, name: str, description: str, units: str, type_name: str, *args: bytes
    ) -> None:
        self.added.append(name)


async def test_live_add_of_a_watcher_with_default_filter(peers: PeerServer, client: Client) -> None:
    first = Recorder()
    client.add_sensor_watcher(first)
    peer = await peers.accept()
    await client.wait_connected()
    await sync_ab(peer)
    await first.synced.wait()
    second = AddedOnly()
    client.add_sensor_watcher(second)
    assert second.added == ["a", "b"]
    # Its sensors count as wanted: removing the first watcher unsubscribes nothing.
    client.remove_sensor_watcher(first)
    task = asyncio.create_task(client.request("ping"))
    await peer.expect(b"?ping[3]")
    await peer.send(b"!ping[3] ok")
    await task
    client.remove_sensor_watcher(second)
    await peer.expect(b"?sensor-sampling[4] a,b none")
