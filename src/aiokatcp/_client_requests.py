"""Outstanding requests of one client: message ids and reply matching.

Owned by :class:`~aiokatcp.client.Client`; this module knows nothing about
connections or the client state machine. It implements the matching rules
of katcp-protocol §3.5:

1. a reply with a message id completes the request with that id;
2. a reply without an id completes the *oldest* outstanding request without
   an id that has the same name (a FIFO per name);
3. an inform with an id joins the request with that id;
4. an inform without an id joins the oldest id-less request of the same name
   (a request's name is never the name of an asynchronous inform);
5. anything else is not ours (the client dispatches it as an asynchronous
   inform, or logs it).

Message ids count up from 1, wrap around before 2**31 - 1 and skip ids that
are still in use, so a long-lived connection never runs out.

An id-less request that is abandoned (timed out or cancelled) stays in its
FIFO as a *tombstone* until its late reply arrives, so that the late reply
is not mistaken for the reply to a newer request of the same name.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import AsyncIterator, Callable, Deque, Dict, List, Optional, Tuple

from ._message import Message

__all__ = ["MAX_MID", "NamedLocks", "PendingRequest", "RequestTracker"]

MAX_MID = 2**31 - 1

#: What a request's future resolves to: the reply and the informs that belong to it.
ReplyAndInforms = Tuple[Message, List[Message]]


class PendingRequest:
    """One request waiting for its reply."""

    __slots__ = ("abandoned", "callback", "future", "informs", "mid", "name")

    def __init__(
        self,
        name: str,
        mid: Optional[int],
        future: asyncio.Future[ReplyAndInforms],
        callback: Optional[Callable[[Message], None]] = None,
    ) -> None:
        self.name = name
        #: Called with each inform as it arrives (the request's ``inform_callback``).
        self.callback = callback
        self.mid = mid
        self.future = future
        self.informs: List[Message] = []
        #: The caller stopped waiting (timeout or cancellation); the entry only
        #: waits to swallow its late reply.
        self.abandoned = False


class RequestTracker:
    """Allocates message ids and routes replies and informs to pending requests."""

    def __init__(self) -> None:
        self._by_mid: Dict[int, PendingRequest] = {}
        self._by_name: Dict[str, Deque[PendingRequest]] = {}
        self.next_mid = 1

    def __len__(self) -> int:
        """Number of live (not abandoned) pending requests."""
        live = len(self._by_mid)
        for queue in self._by_name.values():
            live += sum(not req.abandoned for req in queue)
        return live

    def has_pending(self) -> bool:
        """Whether any request (or tombstone) is waiting for its reply (cheap)."""
        return bool(self._by_mid or self._by_name)

    def allocate_mid(self) -> int:
        """Return the next free message id (wrapping before 2**31 - 1)."""
        mid = self.next_mid
        if len(self._by_mid) >= MAX_MID:  # pragma: no cover - needs 2**31 pending requests
            raise RuntimeError("all message ids are in use")
        while mid in self._by_mid:
            mid = mid + 1 if mid < MAX_MID else 1
        self.next_mid = mid + 1 if mid < MAX_MID else 1
        return mid

    def add(
        self,
        name: str,
        mid: Optional[int],
        future: asyncio.Future[ReplyAndInforms],
        callback: Optional[Callable[[Message], None]] = None,
    ) -> PendingRequest:
        """Register a request about to be sent (`callback` sees each of its informs)."""
        req = PendingRequest(name, mid, future, callback)
        if mid is not None:
            self._by_mid[mid] = req
        else:
            queue = self._by_name.get(name)
            if queue is None:
                queue = self._by_name[name] = collections.deque()
            queue.append(req)
        return req

    def abandon(self, req: PendingRequest) -> None:
        """Forget a request whose caller stopped waiting for it.

        With an id the id is freed at once (a late reply is then unmatched and
        dropped). Without one, the entry remains as a tombstone (see module
        docstring).
        """
        if req.mid is not None:
            if self._by_mid.get(req.mid) is req:
                del self._by_mid[req.mid]
        else:
            req.abandoned = True

    def handle_reply(self, msg: Message) -> bool:
        """Complete the request `msg` answers; ``False`` if there is none."""
        mid = msg.mid
        if mid is not None:
            req = self._by_mid.get(mid)
            if req is None or req.name != msg.name:
                return False
            del self._by_mid[mid]
        else:
            queue = self._by_name.get(msg.name)
            if not queue:
                return False
            req = queue.popleft()
            if not queue:
                del self._by_name[msg.name]
            if req.abandoned:
                return True  # the late reply of a tombstone: swallowed on purpose
        if not req.future.done():
            req.future.set_result((msg, req.informs))
        return True

    def handle_inform(self, msg: Message) -> bool:
        """Attach `msg` to the request it belongs to; ``False`` if it is asynchronous."""
        mid = msg.mid
        if mid is not None:
            req = self._by_mid.get(mid)
            if req is None or req.name != msg.name:
                return False
        else:
            queue = self._by_name.get(msg.name)
            if not queue:
                return False
            req = queue[0]
        if not req.abandoned:
            req.informs.append(msg)
            if req.callback is not None:
                req.callback(msg)
        return True

    def fail_all(self, make_exc: Callable[[], BaseException]) -> None:
        """Fail every pending request and forget them all (connection lost).

        `make_exc` is called once per request, so that no exception object
        (and its traceback) is shared between the tasks that raise it.
        """
        reqs: List[PendingRequest] = list(self._by_mid.values())
        for queue in self._by_name.values():
            reqs.extend(queue)
        self._by_mid.clear()
        self._by_name.clear()
        for req in reqs:
            if not req.future.done():
                req.future.set_exception(make_exc())


class NamedLocks:
    """One lock per request name, for a device without message ids.

    Replies are matched first-in first-out per name, so requests of different
    names may be outstanding together; those of one name wait for each other
    (a device may answer them out of order). A lock lives while it is used.
    """

    def __init__(self) -> None:
        self._locks: Dict[str, Tuple[asyncio.Lock, List[None]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        entry = self._locks.get(name)
        if entry is None:
            entry = self._locks[name] = (asyncio.Lock(), [])
        lock, users = entry
        users.append(None)
        try:
            async with lock:
                yield
        finally:
            users.pop()
            if not users:
                del self._locks[name]
