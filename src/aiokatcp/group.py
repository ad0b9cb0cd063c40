"""Groups of remote devices: command them together, wait for a quorum.

A :class:`DeviceGroup` holds :class:`~aiokatcp.RemoteDevice` members by
name. :meth:`DeviceGroup.request` sends one request to every member
concurrently and never raises for a member's failure: the
:class:`GroupResult` says who answered what. :meth:`DeviceGroup.wait` waits
for a sensor condition on a quorum of members, so one broken member does not
hold up the rest.
"""

from __future__ import annotations

import asyncio
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Set,
    Tuple,
    Union,
)

from ._remote_names import Condition, quorum_count
from .remote import RemoteDevice
from .sensor import Reading

__all__ = ["DeviceGroup", "GroupResult", "QuorumTimeout"]

#: A member as given to :class:`DeviceGroup`: a ``(host, port)`` or a device.
MemberSpec = Union[Tuple[str, int], RemoteDevice]


class GroupResult(Mapping[str, Union[List[bytes], BaseException]]):
    """The outcome of :meth:`DeviceGroup.request`: member name → reply arguments or exception.

    Attributes
    ----------
    succeeded : Dict[str, List[bytes]]
        Members whose reply was ``ok``, with the reply arguments after ``ok``.
    failed : Dict[str, BaseException]
        The other members, with the exception (``FailReply``,
        ``InvalidReply``, ``asyncio.TimeoutError``, ``BrokenPipeError``, ...).
    """

    def __init__(self, results: Dict[str, Union[List[bytes], BaseException]]) -> None:
        self._results = results
        self.succeeded: Dict[str, List[bytes]] = {}
        self.failed: Dict[str, BaseException] = {}
        for name, result in results.items():
            if isinstance(result, BaseException):
                self.failed[name] = result
            else:
                self.succeeded[name] = result

    def __getitem__(self, name: str) -> Union[List[bytes], BaseException]:
        return self._results[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    @property
    def ok(self) -> bool:
        """Whether every member succeeded."""
        return not self.failed

    def __repr__(self) -> str:
        return f"<GroupResult {len(self.succeeded)} ok, failed: {sorted(self.failed)}>"


class QuorumTimeout(asyncio.TimeoutError):
    """:meth:`DeviceGroup.wait` (or ``wait_synced``) timed out before reaching the quorum.

    Attributes
    ----------
    met : List[str]
        The members that did meet the condition.
    needed : int
        How many were needed.
    """

    def __init__(self, message: str, met: List[str], needed: int) -> None:
        super().__init__(message)
        self.met = met
        self.needed = needed


class DeviceGroup:
    """A named collection of :class:`~aiokatcp.RemoteDevice`\\ s.

    Use ``async with DeviceGroup(...) as group:`` or call :meth:`close` and
    :meth:`wait_closed`. ``group["name"]`` is a member, iteration gives the
    member names in order.

    Parameters
    ----------
    members
        Member name → ``(host, port)`` (the group creates, and closes,
        a device for it) or an existing :class:`~aiokatcp.RemoteDevice`
        (left open by :meth:`close`: its creator owns it).
    **device_kwargs
        Passed to each :class:`~aiokatcp.RemoteDevice` the group creates.
    """

    def __init__(self, members: Mapping[str, MemberSpec], **device_kwargs: Any) -> None:
        self._members: Dict[str, RemoteDevice] = {}
        self._owned: List[RemoteDevice] = []
        self._subgroups: Dict[str, DeviceGroup] = {}
        for name, spec in members.items():
            if isinstance(spec, RemoteDevice):
                self._members[name] = spec
            else:
                host, port = spec
                device = RemoteDevice(host, port, name=name, **device_kwargs)
                self._members[name] = device
                self._owned.append(device)

    def __repr__(self) -> str:
        return f"<DeviceGroup {list(self._members)}>"

    async def __aenter__(self) -> DeviceGroup:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()
        await self.wait_closed()

    def close(self) -> None:
        """Close the members this group created."""
        for device in self._owned:
            device.close()

    async def wait_closed(self) -> None:
        """Wait until the members this group created are closed."""
        await asyncio.gather(*(device.wait_closed() for device in self._owned))

    # -- members -----------------------------------------------------------------------------

    @property
    def members(self) -> Mapping[str, RemoteDevice]:
        """Member name → device, in order."""
        return dict(self._members)

    def __getitem__(self, name: str) -> RemoteDevice:
        return self._members[name]

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def subgroup(self, *names: str) -> DeviceGroup:
        """A group of some of the members (sharing them; closing it closes nothing).

        Raises
        ------
        KeyError
            if a name is not a member
        """
        missing = [name for name in names if name not in self._members]
        if missing:
            raise KeyError(f"not members of the group: {', '.join(missing)}")
        return DeviceGroup({name: self._members[name] for name in names})

    def add_subgroup(self, label: str, names: Iterable[str]) -> DeviceGroup:
        """Define a named sub-group (see :attr:`subgroups`) and return it."""
        group = self.subgroup(*names)
        self._subgroups[label] = group
        return group

    @property
    def subgroups(self) -> Mapping[str, DeviceGroup]:
        """Named sub-groups defined with :meth:`add_subgroup`."""
        return dict(self._subgroups)

    # -- operations --------------------------------------------------------------------------

    async def wait_synced(
        self, timeout: Optional[float] = None, quorum: Union[int, float] = 1.0
    ) -> List[str]:
        """Wait until a quorum of members (default all) are synced; return the synced ones.

        Raises
        ------
        QuorumTimeout
            if `timeout` expires first (a subclass of :exc:`asyncio.TimeoutError`)
        """
        needed = quorum_count(quorum, len(self._members))
        waits = {name: device.wait_synced() for name, device in self._members.items()}
        try:
            met = await self._quorum(waits, needed, timeout, None)
        except QuorumTimeout as exc:
            failures = [
                f"{name} ({device.state.name}"
                + (f": {device.inspection_error})" if device.inspection_error else ")")
                for name, device in self._members.items()
                if name not in exc.met
            ]
            raise QuorumTimeout(
                f"{len(exc.met)} of {len(self)} members synced within {timeout} s "
                f"(needed {needed}); not synced: {', '.join(failures)}",
                exc.met,
                needed,
            ) from None
        return met

    async def request(self, name: str, *args: Any, timeout: Optional[float] = None) -> GroupResult:
        """Send request `name` to every member at once; wait for all the replies.

        `timeout` applies to each member (default: each member's own
        default for the request, see :meth:`RemoteDevice.request_timeout`).
        A member's failure is recorded in the result, not raised.
        """
        names = list(self._members)
        results = await asyncio.gather(
            *(self._members[member].call(name, *args, timeout=timeout) for member in names),
            return_exceptions=True,
        )
        return GroupResult(dict(zip(names, results)))

    async def set_strategy(self, sensor_name: str, strategy: str, *params: Any) -> GroupResult:
        """Set (and remember) a sampling strategy for sensor `sensor_name` on every member.

        See :meth:`RemoteSensor.set_strategy <aiokatcp.RemoteSensor.set_strategy>`:
        a member that is not connected, or lacks the sensor, remembers it and
        counts as succeeded; members that reject it are in the result's
        ``failed`` (values in ``succeeded`` are empty lists).
        """
        names = list(self._members)

        async def one(device: RemoteDevice) -> List[bytes]:
            await device.sensor[sensor_name].set_strategy(strategy, *params)
            return []

        results = await asyncio.gather(
            *(one(self._members[name]) for name in names), return_exceptions=True
        )
        return GroupResult(dict(zip(names, results)))

    def readings(self, sensor_name: str) -> Dict[str, Optional[Reading[Any]]]:
        """The latest reading of sensor `sensor_name` on each member (``None`` if none yet)."""
        return {name: dev.sensor[sensor_name].reading for name, dev in self._members.items()}

    async def wait(
        self,
        sensor_name: str,
        condition: Condition,
        timeout: Optional[float] = None,
        quorum: Union[int, float] = 1.0,
        grace: Optional[float] = None,
    ) -> List[str]:
        """Wait until sensor `sensor_name` meets `condition` on a quorum of members.

        Parameters
        ----------
        sensor_name
            KATCP name of the sensor (on every member).
        condition
            A value or a predicate on the reading, as for
            :meth:`RemoteSensor.wait <aiokatcp.RemoteSensor.wait>`.
        timeout
            Seconds to wait for the quorum (``None``: no limit).
        quorum
            An ``int`` is a number of members, a ``float`` a fraction of them
            (rounded up); default 1.0: all.
        grace
            Once the quorum is met, wait up to this many further seconds for
            the other members (``None``: return at once).

        Returns
        -------
        List[str]
            The members that met the condition, in group order.

        Raises
        ------
        QuorumTimeout
            if `timeout` expires before the quorum is met
        """
        needed = quorum_count(quorum, len(self._members))
        waits = {
            name: device.sensor[sensor_name].wait(condition)
            for name, device in self._members.items()
        }
        try:
            return await self._quorum(waits, needed, timeout, grace)
        except QuorumTimeout as exc:
            raise QuorumTimeout(
                f"{sensor_name}: {len(exc.met)} of {len(self)} members met the condition "
                f"within {timeout} s (needed {needed}; met: {', '.join(exc.met) or 'none'})",
                exc.met,
                needed,
            ) from None

    async def _quorum(
        self,
        waits: Dict[str, Any],
        needed: int,
        timeout: Optional[float],
        grace: Optional[float],
    ) -> List[str]:
        """Run the awaitables in `waits`; return the names of those done in time, in order."""
        loop = asyncio.get_running_loop()
        tasks = {loop.create_task(coro): name for name, coro in waits.items()}
        pending: Set[asyncio.Task[Any]] = set(tasks)
        met: Set[str] = set()
        deadline = None if timeout is None else loop.time() + timeout

        def collect(done: Iterable[asyncio.Task[Any]]) -> None:
            for task in done:
                if not task.cancelled() and task.exception() is None:
                    met.add(tasks[task])

        try:
            while len(met) < needed:
                if not pending:
                    break
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                done, pending = await asyncio.wait(
                    pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    break
                collect(done)
            if len(met) >= needed and grace is not None and pending:
                done, pending = await asyncio.wait(pending, timeout=grace)
                collect(done)
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        order = [name for name in self._members if name in met]
        if len(met) < needed:
            raise QuorumTimeout("quorum not met", order, needed)
        return order
