"""aiokatcp: a pure-asyncio implementation of KATCP, the Karoo Array Telescope Control Protocol."""

from . import adjtimex, client, connection, core, protocol, sensor, server, time_sync
from ._blocking_client import BlockingClient
from ._loop_thread import LoopThread
from ._version import __version__
from .client import AbstractSensorWatcher, Client, ProtocolError, SensorWatcher, SyncState
from .connection import Connection, FailReply, InvalidReply
from .core import (
    Address,
    DeviceStatus,
    KatcpSyntaxError,
    Message,
    Now,
    Timestamp,
    TimestampOrNow,
    TypeInfo,
    decode,
    encode,
    get_type,
    register_type,
)
from .group import DeviceGroup, GroupResult, QuorumTimeout
from .protocol import Lru, ProtocolFlags
from .remote import DeviceState, InspectionError, RemoteDevice, RemoteSensor
from .remote_blocking import BlockingDeviceGroup, BlockingRemoteDevice, BlockingRemoteSensor
from .sensor import (
    AggregateSensor,
    Reading,
    Sensor,
    SensorSampler,
    SensorSet,
    SimpleAggregateSensor,
)
from .server import DeviceServer, RequestContext
from .time_sync import ClockState, TimeSyncUpdater


def minor_version() -> str:
    """The first two components of the version (``"2.4"``), as used in ``katcp-library``."""
    return ".".join(__version__.split(".")[:2])


__all__ = [
    "AbstractSensorWatcher",
    "Address",
    "AggregateSensor",
    "BlockingClient",
    "BlockingDeviceGroup",
    "BlockingRemoteDevice",
    "BlockingRemoteSensor",
    "Client",
    "ClockState",
    "Connection",
    "DeviceGroup",
    "DeviceServer",
    "DeviceState",
    "DeviceStatus",
    "FailReply",
    "GroupResult",
    "InspectionError",
    "InvalidReply",
    "KatcpSyntaxError",
    "LoopThread",
    "Lru",
    "Message",
    "Now",
    "ProtocolError",
    "ProtocolFlags",
    "QuorumTimeout",
    "Reading",
    "RemoteDevice",
    "RemoteSensor",
    "RequestContext",
    "Sensor",
    "SensorSampler",
    "SensorSet",
    "SensorWatcher",
    "SimpleAggregateSensor",
    "SyncState",
    "TimeSyncUpdater",
    "Timestamp",
    "TimestampOrNow",
    "TypeInfo",
    "__version__",
    "adjtimex",
    "client",
    "connection",
    "core",
    "decode",
    "encode",
    "get_type",
    "minor_version",
    "protocol",
    "register_type",
    "sensor",
    "server",
    "time_sync",
]
