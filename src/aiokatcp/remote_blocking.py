"""Blocking proxies of :class:`~aiokatcp.RemoteDevice` and :class:`~aiokatcp.DeviceGroup`.

For threaded code (scripts, GUIs, katcp-python-style callers): the real
objects live on an event loop run by a :class:`~aiokatcp.LoopThread`, and
each proxy method hands the work to that loop and blocks until it is done.
Several proxies may share one loop thread (pass `loop_thread`); a proxy
that made its own loop thread stops it on :meth:`close`.

Listeners added through a proxy run on the loop thread: keep them short and
do not call blocking proxy methods from them (that raises ``RuntimeError``).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from ._client_remote_sensor import RemoteSensor
from ._loop_thread import LoopThread
from ._message import Message
from ._remote_names import Condition, DeviceState
from .group import DeviceGroup, GroupResult
from .remote import RemoteDevice
from .sensor import Reading

__all__ = ["BlockingDeviceGroup", "BlockingRemoteDevice", "BlockingRemoteSensor"]


class BlockingRemoteSensor:
    """Blocking view of a :class:`~aiokatcp.RemoteSensor` (same attributes and methods)."""

    def __init__(self, sensor: RemoteSensor, loop_thread: LoopThread) -> None:
        self._sensor = sensor
        self._lt = loop_thread

    def __repr__(self) -> str:
        return f"<BlockingRemoteSensor {self._sensor.name!r}>"

    @property
    def name(self) -> str:
        return self._sensor.name

    @property
    def reading(self) -> Optional[Reading[Any]]:
        """The latest reading (one attribute read: consistent without a loop hop)."""
        return self._sensor.reading

    @property
    def value(self) -> Any:
        reading = self._sensor.reading
        return None if reading is None else reading.value

    @property
    def status(self) -> Any:
        reading = self._sensor.reading
        return None if reading is None else reading.status

    @property
    def timestamp(self) -> Optional[float]:
        reading = self._sensor.reading
        return None if reading is None else reading.timestamp

    @property
    def received_timestamp(self) -> Optional[float]:
        return self._sensor.received_timestamp

    @property
    def exists(self) -> bool:
        return self._sensor.exists

    def add_listener(self, listener: Callable[[RemoteSensor, Reading[Any]], None]) -> None:
        """Add a listener; it is called on the loop thread."""
        self._lt.call(self._sensor.add_listener, listener)

    def remove_listener(self, listener: Callable[[RemoteSensor, Reading[Any]], None]) -> None:
        self._lt.call(self._sensor.remove_listener, listener)

    def wait(self, condition: Condition, timeout: Optional[float] = None) -> Reading[Any]:
        """Block until the condition holds (see :meth:`aiokatcp.RemoteSensor.wait`)."""
        return self._lt.run(self._sensor.wait(condition, timeout))

    def set_strategy(self, strategy: str, *params: Any) -> None:
        self._lt.run(self._sensor.set_strategy(strategy, *params))

    def drop_strategy(self) -> None:
        self._lt.call(self._sensor.drop_strategy)


class _BlockingRequests:
    def __init__(self, device: RemoteDevice, loop_thread: LoopThread) -> None:
        self._device = device
        self._lt = loop_thread

    def _wrap(self, method: Callable[..., Any]) -> Callable[..., List[bytes]]:
        lt = self._lt

        def call(*args: Any, timeout: Optional[float] = None) -> List[bytes]:
            result: List[bytes] = lt.run(method(*args, timeout=timeout))
            return result

        call.__name__ = getattr(method, "__name__", "request")
        call.__doc__ = method.__doc__
        return call

    def __getattr__(self, attr: str) -> Callable[..., List[bytes]]:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self._wrap(self._lt.call(getattr, self._device.req, attr))

    def __getitem__(self, name: str) -> Callable[..., List[bytes]]:
        return self._wrap(self._lt.call(self._device.req.__getitem__, name))

    def __contains__(self, name: object) -> bool:
        return self._lt.call(self._device.req.__contains__, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._lt.call(list, self._device.req))

    def __dir__(self) -> List[str]:
        return self._lt.call(dir, self._device.req)


class _BlockingSensors:
    def __init__(self, device: RemoteDevice, loop_thread: LoopThread) -> None:
        self._device = device
        self._lt = loop_thread

    def __getattr__(self, attr: str) -> BlockingRemoteSensor:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return BlockingRemoteSensor(self._lt.call(getattr, self._device.sensor, attr), self._lt)

    def __getitem__(self, name: str) -> BlockingRemoteSensor:
        sensor = self._lt.call(self._device.sensor.__getitem__, name)
        return BlockingRemoteSensor(sensor, self._lt)

    def __contains__(self, name: object) -> bool:
        return self._lt.call(self._device.sensor.__contains__, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._lt.call(list, self._device.sensor))

    def __len__(self) -> int:
        return self._lt.call(len, self._device.sensor)


class BlockingRemoteDevice:
    """A :class:`~aiokatcp.RemoteDevice` for threaded code.

    ``BlockingRemoteDevice(host, port)`` creates the device on the loop
    thread (its own unless `loop_thread` is given) and returns at once; use
    :meth:`wait_synced`, or :meth:`connect` which waits. ``dev.req.<name>``
    and ``dev.sensor.<name>`` work as on the asynchronous device, blocking.
    Other keyword arguments go to :class:`~aiokatcp.RemoteDevice`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        loop_thread: Optional[LoopThread] = None,
        **kwargs: Any,
    ) -> None:
        self._own_lt = loop_thread is None
        self._lt = LoopThread() if loop_thread is None else loop_thread
        if self._own_lt:
            self._lt.start()

        async def make() -> RemoteDevice:
            return RemoteDevice(host, port, **kwargs)

        self._init(self._lt.run(make()))

    def _init(self, device: RemoteDevice) -> None:
        self.device = device
        self.req = _BlockingRequests(device, self._lt)
        self.sensor = _BlockingSensors(device, self._lt)

    @classmethod
    def wrap(cls, device: RemoteDevice, loop_thread: LoopThread) -> BlockingRemoteDevice:
        """A proxy for an existing `device` living on `loop_thread` (closing it is up to you)."""
        proxy = cls.__new__(cls)
        proxy._own_lt = False
        proxy._lt = loop_thread
        proxy._init(device)
        return proxy

    @classmethod
    def connect(
        cls, host: str, port: int, *, timeout: Optional[float] = None, **kwargs: Any
    ) -> BlockingRemoteDevice:
        """Create the proxy and block until the device is synced (closed again on failure)."""
        proxy = cls(host, port, **kwargs)
        try:
            proxy.wait_synced(timeout)
        except BaseException:
            proxy.close()
            raise
        return proxy

    def __repr__(self) -> str:
        return f"<BlockingRemoteDevice {self.device.name}>"

    def __enter__(self) -> BlockingRemoteDevice:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def loop_thread(self) -> LoopThread:
        return self._lt

    @property
    def state(self) -> DeviceState:
        return self.device.state

    @property
    def inspection_error(self) -> Optional[Exception]:
        return self.device.inspection_error

    def wait_synced(self, timeout: Optional[float] = None) -> None:
        self._lt.run(self.device.wait_synced(timeout))

    def wait_state(self, state: DeviceState, timeout: Optional[float] = None) -> None:
        self._lt.run(self.device.wait_state(state, timeout))

    def request(
        self, name: str, *args: Any, timeout: Optional[float] = None
    ) -> Tuple[List[bytes], List[Message]]:
        return self._lt.run(self.device.request(name, *args, timeout=timeout))

    def call(self, name: str, *args: Any, timeout: Optional[float] = None) -> List[bytes]:
        return self._lt.run(self.device.call(name, *args, timeout=timeout))

    def list_sensors(self, filter: str = "", status: Any = None) -> List[BlockingRemoteSensor]:
        sensors = self._lt.call(self.device.list_sensors, filter, status)
        return [BlockingRemoteSensor(sensor, self._lt) for sensor in sensors]

    def close(self) -> None:
        """Close the device (and stop the loop thread if this proxy started it)."""

        async def close() -> None:
            self.device.close()
            await self.device.wait_closed()

        if not self._lt.loop.is_closed():
            self._lt.run(close())
        if self._own_lt:
            self._lt.close()


class BlockingDeviceGroup:
    """A :class:`~aiokatcp.DeviceGroup` for threaded code (same methods, blocking).

    Members are ``(host, port)`` pairs (devices are created on the group's
    loop thread) or :class:`BlockingRemoteDevice` proxies that use the same
    loop thread as the group.
    """

    def __init__(
        self,
        members: Mapping[str, Union[Tuple[str, int], BlockingRemoteDevice]],
        *,
        loop_thread: Optional[LoopThread] = None,
        **device_kwargs: Any,
    ) -> None:
        self._own_lt = loop_thread is None
        self._lt = LoopThread() if loop_thread is None else loop_thread
        if self._own_lt:
            self._lt.start()
        specs: Dict[str, Union[Tuple[str, int], RemoteDevice]] = {}
        for name, spec in members.items():
            if isinstance(spec, BlockingRemoteDevice):
                if spec.loop_thread is not self._lt:
                    raise ValueError(f"member {name} runs on another loop thread than the group")
                specs[name] = spec.device
            else:
                specs[name] = spec

        async def make() -> DeviceGroup:
            return DeviceGroup(specs, **device_kwargs)

        self.group = self._lt.run(make())

    def __enter__(self) -> BlockingDeviceGroup:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __getitem__(self, name: str) -> BlockingRemoteDevice:
        return BlockingRemoteDevice.wrap(self.group[name], self._lt)

    def __iter__(self) -> Iterator[str]:
        return iter(self.group)

    def __len__(self) -> int:
        return len(self.group)

    def wait_synced(
        self, timeout: Optional[float] = None, quorum: Union[int, float] = 1.0
    ) -> List[str]:
        return self._lt.run(self.group.wait_synced(timeout, quorum))

    def request(self, name: str, *args: Any, timeout: Optional[float] = None) -> GroupResult:
        return self._lt.run(self.group.request(name, *args, timeout=timeout))

    def wait(
        self,
        sensor_name: str,
        condition: Condition,
        timeout: Optional[float] = None,
        quorum: Union[int, float] = 1.0,
        grace: Optional[float] = None,
    ) -> List[str]:
        return self._lt.run(self.group.wait(sensor_name, condition, timeout, quorum, grace))

    def set_strategy(self, sensor_name: str, strategy: str, *params: Any) -> GroupResult:
        return self._lt.run(self.group.set_strategy(sensor_name, strategy, *params))

    def readings(self, sensor_name: str) -> Dict[str, Optional[Reading[Any]]]:
        return self._lt.call(self.group.readings, sensor_name)

    def subgroup(self, *names: str) -> BlockingDeviceGroup:
        """A blocking view of :meth:`DeviceGroup.subgroup <aiokatcp.DeviceGroup.subgroup>`."""
        proxy = BlockingDeviceGroup.__new__(BlockingDeviceGroup)
        proxy._own_lt = False
        proxy._lt = self._lt
        proxy.group = self._lt.call(self.group.subgroup, *names)
        return proxy

    def close(self) -> None:
        """Close the members the group created (and the loop thread if the group started it)."""

        async def close() -> None:
            self.group.close()
            await self.group.wait_closed()

        if not self._lt.loop.is_closed():
            self._lt.run(close())
        if self._own_lt:
            self._lt.close()
