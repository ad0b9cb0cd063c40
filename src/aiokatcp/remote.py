"""High-level client: a remote device as an object.

:class:`RemoteDevice` wraps a :class:`~aiokatcp.client.Client` and a
:class:`~aiokatcp.client.SensorWatcher` (public API only). After each
connection it *inspects* the device: ``?help`` (and ``?request-timeout-hint``
when the device has protocol flag ``T``) gives the requests, which appear as
methods of :attr:`RemoteDevice.req`; the watcher's sync gives the sensors,
which appear as :class:`RemoteSensor` objects in :attr:`RemoteDevice.sensor`.
Sampling strategies chosen with :meth:`RemoteSensor.set_strategy` are
remembered by sensor name and re-applied after every sync (a reconnect, an
``#interface-changed``), so they survive restarts of the device.

An inspection that fails (a request fails, is invalid or times out) moves
the device to :attr:`DeviceState.FAILED` with the reason in
:attr:`RemoteDevice.inspection_error`, and is retried with randomised
exponential back-off; a failed device is never reported as synced.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import re
from typing import (
    Any,
    Awaitable,
    Callable,
    Collection,
    Dict,
    Generator,
    Iterator,
    List,
    Optional,
    Pattern,
    Sequence,
    Tuple,
    Type,
    Union,
)

from ._backoff import backoff_delays
from ._client_helpers import parse_timeout_hints
from ._client_remote_sensor import RemoteSensor, abort_waiters, deliver, set_present
from ._compat import timeout as timeout_scope
from ._message import Message
from ._remote_names import DeviceState, InspectionError, parse_help, python_name
from .client import Client, SensorWatcher, SyncState
from .exceptions import FailReply, InvalidReply
from .sensor import Sensor, _Status  # _Status: the type of Sensor.Status, for typing

__all__ = [
    "DeviceState",
    "InspectionError",
    "RemoteDevice",
    "RemoteSensor",
    "RequestNamespace",
    "SensorNamespace",
]

logger = logging.getLogger("aiokatcp.remote")

#: Whether Client.request takes `timeout` (2.3's does not: then asyncio.wait_for imposes it).
_REQUEST_TAKES_TIMEOUT = "timeout" in inspect.signature(Client.request).parameters


class _Watcher(SensorWatcher):
    """The device's sensor watcher: forwards the mirror's changes to the device."""

    def __init__(self, device: RemoteDevice, enum_types: Sequence[Type[enum.Enum]]) -> None:
        super().__init__(device.client, enum_types)
        self._device = device
        self._remote = device._sensors  # name -> RemoteSensor (shared, owned by the device)

    def make_type(self, type_name: str, parameters: Sequence[bytes]) -> type:
        if type_name != "discrete":
            return self.SENSOR_TYPES[type_name]
        found = super().make_type(type_name, parameters)
        return found if found in self.enum_types else str  # text unless the user gave an enum

    def sensor_added(
        self, name: str, description: str, units: str, type_name: str, *args: bytes
    ) -> None:
        super().sensor_added(name, description, units, type_name, *args)
        if name in self.sensors:
            set_present(self._device._sensor(name), True, description, units, type_name)

    def sensor_removed(self, name: str) -> None:
        super().sensor_removed(name)
        remote = self._remote.get(name)
        if remote is not None:
            set_present(remote, False)

    def set_sensor_value(
        self, sensor: Sensor[Any], value: Any, status: _Status, timestamp: float
    ) -> None:
        sensor.set_value(value, status, timestamp)  # what the base class does
        remote = self._remote.get(sensor.name)
        if remote is not None:
            deliver(remote, sensor.reading)

    def state_updated(self, state: SyncState) -> None:
        super().state_updated(state)
        if state in (SyncState.DISCONNECTED, SyncState.CLOSED):
            # The base class marked the mirrors unreachable: pass that on.
            for sensor in self.sensors.values():
                remote = self._remote.get(sensor.name)
                if remote is not None:
                    deliver(remote, sensor.reading)
        self._device._watcher_state(state)


class _Request:
    """One request of the device as a method (see :class:`RequestNamespace`)."""

    def __init__(
        self, device: RemoteDevice, name: str, help_text: str, timeout: Optional[float]
    ) -> None:
        self.device = device
        self.name = name
        self.timeout = timeout
        self.__name__ = python_name(name)
        self.__qualname__ = f"req.{self.__name__}"
        suffix = f"\n\nDefault timeout: {timeout} s (the device's hint)." if timeout else ""
        self.__doc__ = help_text + suffix

    def __repr__(self) -> str:
        return f"<request ?{self.name} of {self.device}>"

    def __call__(self, *args: Any, timeout: Optional[float] = None) -> Awaitable[List[bytes]]:
        """Send the request; return the reply arguments after ``ok``."""
        if timeout is None:
            timeout = self.timeout
        return self.device.call(self.name, *args, timeout=timeout)


class RequestNamespace:
    """The requests of a device, as methods: ``await dev.req.set_freq(10e6)``.

    Each method is named after the request with ``-`` as ``_``, has the
    request's ``?help`` text as ``__doc__``, takes the request's arguments
    and a keyword `timeout` (default: the device's ``?request-timeout-hint``
    for it, else the device's `default_timeout`), returns the reply's
    arguments after ``ok`` and raises :exc:`~aiokatcp.FailReply` or
    :exc:`~aiokatcp.InvalidReply`. Also a mapping by KATCP name:
    ``dev.req["set-freq"]``. Rebuilt at each inspection.
    """

    def __init__(self, device: RemoteDevice) -> None:
        self._device = device
        self._by_name: Dict[str, _Request] = {}
        self._by_python: Dict[str, _Request] = {}

    def _set(self, requests: Dict[str, _Request]) -> None:
        self._by_name = requests
        self._by_python = {req.__name__: req for req in requests.values()}

    def __getattr__(self, attr: str) -> Callable[..., Awaitable[List[bytes]]]:
        if attr.startswith("__"):
            raise AttributeError(attr)
        try:
            return self._by_python[attr]
        except KeyError:
            state = self._device.state
            hint = "" if state is DeviceState.SYNCED else f" (device is {state.name})"
            raise AttributeError(f"{self._device} has no request {attr!r}{hint}") from None

    def __getitem__(self, name: str) -> Callable[..., Awaitable[List[bytes]]]:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name or name in self._by_python

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_name))

    def __len__(self) -> int:
        return len(self._by_name)

    def __dir__(self) -> List[str]:
        return sorted(self._by_python)


class SensorNamespace:
    """The sensors of a device: ``dev.sensor.drive_mode`` or ``dev.sensor["drive.mode"]``.

    Attribute access (``.`` and ``-`` as ``_``) finds sensors the device has;
    item access by KATCP name always returns the sensor's object, creating it
    if the device has no such sensor (yet), so listeners and strategies can
    be set up in advance. Iteration and ``len`` cover the sensors the device has.
    """

    def __init__(self, device: RemoteDevice) -> None:
        self._device = device

    def __getattr__(self, attr: str) -> RemoteSensor:
        if attr.startswith("__"):
            raise AttributeError(attr)
        for sensor in self._device._sensors.values():
            if sensor.exists and sensor.python_name == attr:
                return sensor
        state = self._device.state
        hint = "" if state is DeviceState.SYNCED else f" (device is {state.name})"
        raise AttributeError(f"{self._device} has no sensor {attr!r}{hint}")

    def __getitem__(self, name: str) -> RemoteSensor:
        return self._device._sensor(name)

    def __contains__(self, name: object) -> bool:
        sensor = self._device._sensors.get(name) if isinstance(name, str) else None
        return sensor is not None and sensor.exists

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(name for name, s in self._device._sensors.items() if s.exists))

    def __len__(self) -> int:
        return sum(1 for s in self._device._sensors.values() if s.exists)

    def __dir__(self) -> List[str]:
        return sorted(s.python_name for s in self._device._sensors.values() if s.exists)


class _Connecting:
    """What :meth:`RemoteDevice.connect` returns: awaitable and an async context manager."""

    def __init__(self, make: Callable[[], Awaitable[RemoteDevice]]) -> None:
        self._make = make
        self._device: Optional[RemoteDevice] = None

    def __await__(self) -> Generator[Any, None, RemoteDevice]:
        return self._make().__await__()

    async def __aenter__(self) -> RemoteDevice:
        self._device = await self._make()
        return self._device

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._device is not None:
            self._device.close()
            await self._device.wait_closed()


class RemoteDevice:
    """A KATCP device as an object: requests as methods, sensors as objects.

    Construct it on the event loop (it starts connecting at once, and
    reconnects with back-off), or use :meth:`connect`. Close it with
    :meth:`close` and :meth:`wait_closed`, or use it as an async context
    manager.

    Parameters
    ----------
    host, port
        The device to connect to.
    name
        A label for logs and reprs (default ``host:port``).
    default_timeout
        Timeout for requests that have no timeout hint (``None``: no limit).
    inspect_timeout
        Limit for each inspection step (``?help``, ``?request-timeout-hint``,
        the sensor sync); exceeding it is an inspection failure (for the
        timeout hints, only a warning).
    retry_initial, retry_max
        Back-off bounds (seconds) for retrying a failed inspection.
    enum_types
        Enum types for discrete sensors (as for
        :class:`~aiokatcp.SensorWatcher`); other discrete sensors have
        ``str`` values.
    **client_kwargs
        Passed to :class:`~aiokatcp.Client` (``auto_reconnect``,
        ``keepalive``, ...).

    Attributes
    ----------
    client : Client
        The underlying client (for anything not covered here).
    req : RequestNamespace
        The device's requests, as methods.
    sensor : SensorNamespace
        The device's sensors.
    inspection_error : Optional[InspectionError]
        Why the last inspection failed (``None`` once one succeeds).
    """

    State = DeviceState

    def __init__(
        self,
        host: str,
        port: int,
        *,
        name: Optional[str] = None,
        default_timeout: Optional[float] = None,
        inspect_timeout: float = 30.0,
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
        enum_types: Sequence[Type[enum.Enum]] = (),
        **client_kwargs: Any,
    ) -> None:
        self.name = name if name is not None else f"{host}:{port}"
        self.default_timeout = default_timeout
        self.inspect_timeout = inspect_timeout
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.inspection_error: Optional[InspectionError] = None
        self.req = RequestNamespace(self)
        self.sensor = SensorNamespace(self)
        self._sensors: Dict[str, RemoteSensor] = {}
        self._state = DeviceState.DISCONNECTED
        self._state_waiters: List[asyncio.Future[None]] = []
        self._inspection: Optional[asyncio.Task[None]] = None
        self._watcher_synced = asyncio.Event()
        self._closed = False
        self._gave_up: Optional[Exception] = None  # why the device closed itself, if it did
        self.client = Client(host, port, **client_kwargs)
        self._watcher = _Watcher(self, enum_types)
        self.client.add_connected_callback(self._connected)
        self.client.add_disconnected_callback(self._disconnected)
        self.client.add_failed_connect_callback(self._failed_connect)
        self.client.add_sensor_watcher(self._watcher)

    @classmethod
    def connect(
        cls, host: str, port: int, *, timeout: Optional[float] = None, **kwargs: Any
    ) -> _Connecting:
        """Create a device and wait until it is synced (requests and sensors known).

        Use as ``dev = await RemoteDevice.connect(...)`` or
        ``async with RemoteDevice.connect(...) as dev:`` (which closes it
        on exit). Keyword arguments are those of the constructor.

        Raises
        ------
        asyncio.TimeoutError
            if `timeout` expires first (the device is closed)
        """

        async def make() -> RemoteDevice:
            device = cls(host, port, **kwargs)
            try:
                await device.wait_synced(timeout)
            except BaseException:
                device.close()
                await device.wait_closed()
                raise
            return device

        return _Connecting(make)

    def __repr__(self) -> str:
        return f"<RemoteDevice {self.name} {self._state.name}>"

    def __str__(self) -> str:
        return self.name

    async def __aenter__(self) -> RemoteDevice:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()
        await self.wait_closed()

    # -- state -------------------------------------------------------------------------------

    @property
    def state(self) -> DeviceState:
        """The current :class:`DeviceState`."""
        return self._state

    @property
    def synced(self) -> bool:
        """Whether the state is :attr:`DeviceState.SYNCED`."""
        return self._state is DeviceState.SYNCED

    def _set_state(self, state: DeviceState) -> None:
        if self._state is state or self._state is DeviceState.CLOSED:
            return
        self._state = state
        waiters, self._state_waiters = self._state_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    async def _wait_until(self, predicate: Callable[[], bool], timeout: Optional[float]) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not predicate():
            if self._state is DeviceState.CLOSED:
                raise ConnectionAbortedError(f"{self} is closed") from self._gave_up
            future = loop.create_future()
            self._state_waiters.append(future)
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                async with timeout_scope(remaining):
                    await future
            finally:
                future.cancel()

    async def wait_state(self, state: DeviceState, timeout: Optional[float] = None) -> None:
        """Wait until the device is in `state`.

        Raises
        ------
        asyncio.TimeoutError
            if `timeout` expires first
        ConnectionAbortedError
            if the device is (or becomes) closed while waiting for another state
        """
        await self._wait_until(lambda: self._state is state, timeout)

    async def wait_synced(self, timeout: Optional[float] = None) -> None:
        """Wait until the device is synced.

        Raises
        ------
        asyncio.TimeoutError
            if `timeout` expires first; the message includes the last
            inspection failure, if there was one
        ConnectionAbortedError
            if the device is closed
        """
        try:
            await self._wait_until(lambda: self._state is DeviceState.SYNCED, timeout)
        except asyncio.TimeoutError:
            why = f": {self.inspection_error}" if self.inspection_error else ""
            raise asyncio.TimeoutError(
                f"{self} not synced within {timeout} s (state {self._state.name}){why}"
            ) from None

    # -- life cycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection and stop reconnecting (see :meth:`wait_closed`)."""
        if self._closed:
            return
        self._closed = True
        if self._inspection is not None:
            self._inspection.cancel()
        self.client.close()
        self._set_state(DeviceState.CLOSED)
        for sensor in self._sensors.values():
            abort_waiters(sensor, ConnectionAbortedError(f"{self} was closed"))

    async def wait_closed(self) -> None:
        """Wait until the device is closed (after :meth:`close`)."""
        if self._inspection is not None:
            await asyncio.wait({self._inspection})
        await self.client.wait_closed()

    # -- requests ----------------------------------------------------------------------------

    def request_timeout(self, name: str) -> Optional[float]:
        """The default timeout for request `name` (its hint, else `default_timeout`)."""
        req = self.req._by_name.get(name)
        if req is not None and req.timeout is not None:
            return req.timeout
        return self.default_timeout

    async def request(
        self, name: str, *args: Any, timeout: Optional[float] = None
    ) -> Tuple[List[bytes], List[Message]]:
        """Send any request; return the reply arguments after ``ok`` and the informs.

        Like :meth:`Client.request <aiokatcp.Client.request>`, with the
        default timeout of :meth:`request_timeout`.

        Raises
        ------
        FailReply, InvalidReply
            if the reply is not ``ok``
        asyncio.TimeoutError
            if the timeout expires
        BrokenPipeError, ConnectionResetError
            if not connected, or the connection is lost
        """
        if timeout is None:
            timeout = self.request_timeout(name)
        if timeout is None:
            return await self.client.request(name, *args)
        if _REQUEST_TAKES_TIMEOUT:
            return await self.client.request(name, *args, timeout=timeout)
        try:
            async with timeout_scope(timeout):
                return await self.client.request(name, *args)
        except asyncio.TimeoutError:
            message = f"No reply to ?{name} from {self} within {timeout} s"
            raise asyncio.TimeoutError(message) from None

    async def call(self, name: str, *args: Any, timeout: Optional[float] = None) -> List[bytes]:
        """Like :meth:`request`, but return only the reply arguments (as ``dev.req`` methods do)."""
        reply, _ = await self.request(name, *args, timeout=timeout)
        return reply

    # -- sensors -----------------------------------------------------------------------------

    def _sensor(self, name: str) -> RemoteSensor:
        sensor = self._sensors.get(name)
        if sensor is None:
            sensor = self._sensors[name] = RemoteSensor(self, name)
        return sensor

    def list_sensors(
        self,
        filter: Union[str, Pattern[str]] = "",
        status: Union[_Status, Collection[_Status], None] = None,
    ) -> List[RemoteSensor]:
        """The device's sensors whose name matches `filter` (``re.search``), sorted by name.

        `status` keeps only sensors whose latest reading has that status
        (or one of those statuses).
        """
        pattern = re.compile(filter)
        if isinstance(status, Sensor.Status):
            status = (status,)
        return [
            sensor
            for name, sensor in sorted(self._sensors.items())
            if sensor.exists
            and pattern.search(name)
            and (status is None or sensor.status in status)
        ]

    # -- inspection --------------------------------------------------------------------------

    def _connected(self) -> None:
        self._start_inspection()

    def _disconnected(self) -> None:
        if self._inspection is not None:
            self._inspection.cancel()
            self._inspection = None
        self._set_state(DeviceState.DISCONNECTED)
        if not self.client.auto_reconnect:
            self.close()  # the client will not come back

    def _failed_connect(self, exc: Exception) -> None:
        if not self.client.auto_reconnect:
            self._gave_up = exc
            self.close()

    def _watcher_state(self, state: SyncState) -> None:
        if state is SyncState.SYNCED:
            self._watcher_synced.set()
            if self._state is DeviceState.FAILED:
                # The watcher recovered (say, on #interface-changed): retry now, not after
                # the rest of the back-off.
                self._start_inspection()
            return
        self._watcher_synced.clear()
        if state is SyncState.SYNCING and self.client.is_connected:
            # A new sensor sync (a reconnect, #interface-changed): inspect again.
            self._start_inspection()

    def _start_inspection(self) -> None:
        if self._closed:
            return
        if self._inspection is not None:
            self._inspection.cancel()
        self._inspection = asyncio.get_running_loop().create_task(self._inspect())

    async def _inspect(self) -> None:
        delays = backoff_delays(self.retry_initial, self.retry_max)
        while True:
            self._set_state(DeviceState.SYNCING)
            try:
                await self._inspect_once()
            except InspectionError as exc:
                self.inspection_error = exc
                self._set_state(DeviceState.FAILED)
                delay = next(delays)
                logger.warning("%s: %s; retrying in %.3g s", self, exc, delay)
                await asyncio.sleep(delay)
            except ConnectionError:
                return  # the disconnect callback takes over
            else:
                self.inspection_error = None
                self._set_state(DeviceState.SYNCED)
                return

    async def _step(self, what: str, coro: Awaitable[Any]) -> Any:
        try:
            async with timeout_scope(self.inspect_timeout):
                return await coro
        except asyncio.TimeoutError as exc:
            raise InspectionError(f"{what}: no reply within {self.inspect_timeout} s") from exc
        except (FailReply, InvalidReply, ValueError) as exc:
            raise InspectionError(f"{what} failed: {exc}") from exc

    async def _inspect_once(self) -> None:
        _, informs = await self._step("?help", self.client.request("help"))
        try:
            helps = parse_help(informs)
        except ValueError as exc:
            raise InspectionError(f"?help failed: {exc}") from exc
        hints: Dict[str, float] = {}
        if "T" in self.client.protocol_flags:
            try:
                _, informs = await self._step(
                    "?request-timeout-hint", self.client.request("request-timeout-hint")
                )
            except InspectionError as exc:
                # Hints are advice: without them requests just get the default timeout.
                logger.warning("%s: %s; not using timeout hints", self, exc)
            else:
                hints = parse_timeout_hints(informs, logger)
        self.req._set(
            {name: _Request(self, name, text, hints.get(name)) for name, text in helps.items()}
        )
        if not self._watcher_synced.is_set():
            try:
                async with timeout_scope(self.inspect_timeout):
                    await self._watcher_synced.wait()
            except asyncio.TimeoutError:
                # The watcher keeps retrying on its own; ask once ourselves to say why.
                await self._step("?sensor-list", self.client.request("sensor-list"))
                raise InspectionError(
                    f"sensor sync: not complete within {self.inspect_timeout} s"
                ) from None
        await self._apply_strategies()

    async def _apply_strategies(self) -> None:
        wanted = [s for s in self._sensors.values() if s.exists and s.strategy is not None]
        if not wanted:
            return
        results = await asyncio.gather(
            *(
                self.client.request("sensor-sampling", s.name, s.strategy[0], *s.strategy[1])
                for s in wanted
                if s.strategy is not None
            ),
            return_exceptions=True,
        )
        for sensor, result in zip(wanted, results):
            if isinstance(result, (FailReply, InvalidReply)):
                logger.warning(
                    "%s: could not re-apply strategy %s to %s: %s",
                    self,
                    sensor.strategy,
                    sensor.name,
                    result,
                )
            elif isinstance(result, BaseException):
                raise result
