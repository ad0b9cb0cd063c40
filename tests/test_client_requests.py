"""The request tracker: message-id allocation and reply matching (katcp-protocol §3.5)."""

from __future__ import annotations

import asyncio

import pytest

from aiokatcp import Message
from aiokatcp._client_requests import MAX_MID, RequestTracker


async def test_ids_count_up_and_wrap_skipping_ids_in_use() -> None:
    loop = asyncio.get_running_loop()
    tracker = RequestTracker()
    assert [tracker.allocate_mid() for _ in range(3)] == [1, 2, 3]
    tracker.add("a", 1, loop.create_future())  # 1 stays in use
    tracker.add("b", 2, loop.create_future())  # 2 stays in use
    tracker.next_mid = MAX_MID - 1
    tracker.add("c", MAX_MID, loop.create_future())
    assert tracker.allocate_mid() == MAX_MID - 1
    # MAX_MID, 1 and 2 are in use: the counter wraps and skips them.
    assert tracker.allocate_mid() == 3
    assert tracker.allocate_mid() == 4


async def test_reply_and_informs_by_id() -> None:
    loop = asyncio.get_running_loop()
    tracker = RequestTracker()
    fut1 = loop.create_future()
    fut2 = loop.create_future()
    tracker.add("x", 1, fut1)
    tracker.add("x", 2, fut2)
    assert tracker.handle_inform(Message.inform("x", b"for-2", mid=2))
    assert not tracker.handle_inform(Message.inform("other", b"?", mid=2))  # wrong name
    assert not tracker.handle_inform(Message.inform("x", b"?", mid=3))
    assert not tracker.handle_inform(Message.inform("x"))  # no id: asynchronous
    assert tracker.handle_reply(Message.reply("x", b"ok", mid=2))
    assert not fut1.done()
    reply, informs = fut2.result()
    assert reply.mid == 2 and [i.arguments for i in informs] == [[b"for-2"]]
    assert not tracker.handle_reply(Message.reply("x", b"ok", mid=2))  # already answered
    assert len(tracker) == 1


async def test_reply_without_id_goes_to_oldest_of_that_name() -> None:
    loop = asyncio.get_running_loop()
    tracker = RequestTracker()
    futs = [loop.create_future() for _ in range(3)]
    reqs = [tracker.add(name, None, fut) for name, fut in zip(["a", "b", "a"], futs)]
    tracker.abandon(reqs[0])  # a tombstone: its late reply must not go to reqs[2]
    assert tracker.handle_inform(Message.inform("a", b"late"))
    assert tracker.handle_reply(Message.reply("a", b"ok", b"late"))
    assert not futs[2].done()
    assert tracker.handle_inform(Message.inform("a", b"mine"))
    assert tracker.handle_reply(Message.reply("a", b"ok", b"mine"))
    reply, informs = futs[2].result()
    assert reply.arguments == [b"ok", b"mine"] and len(informs) == 1
    assert not tracker.handle_reply(Message.reply("a", b"ok"))
    assert len(tracker) == 1


async def test_abandon_frees_id() -> None:
    loop = asyncio.get_running_loop()
    tracker = RequestTracker()
    req = tracker.add("x", 7, loop.create_future())
    tracker.abandon(req)
    assert len(tracker) == 0
    assert not tracker.handle_reply(Message.reply("x", b"ok", mid=7))


async def test_fail_all() -> None:
    loop = asyncio.get_running_loop()
    tracker = RequestTracker()
    futs = [loop.create_future() for _ in range(2)]
    tracker.add("x", 1, futs[0])
    tracker.add("y", None, futs[1])
    tracker.fail_all(lambda: ConnectionResetError("gone"))
    excs = [fut.exception() for fut in futs]
    assert all(isinstance(exc, ConnectionResetError) for exc in excs)
    assert excs[0] is not excs[1]
    assert len(tracker) == 0
    with pytest.raises(ConnectionResetError):
        futs[0].result()
