"""Reply matching for devices without message ids (v4, or v5 without ``I``).

The client's request tracker (:mod:`aiokatcp._client_requests`) already
matches id-less replies first-in first-out per request name, as katcp-python
does. These tests pin the behaviour the v4 integration relies on when it lets
requests of different names be outstanding together: two names outstanding,
informs joining the oldest request of their name, and an abandoned request's
late reply being swallowed rather than given to the next request.
"""

from __future__ import annotations

import asyncio

from aiokatcp import Message
from aiokatcp._client_requests import RequestTracker


def reply(line: bytes) -> Message:
    return Message.parse(line + b"\n")


async def test_two_names_outstanding() -> None:
    loop = asyncio.get_running_loop()
    tracker = RequestTracker()
    slow = tracker.add("slow", None, loop.create_future())
    echo = tracker.add("echo", None, loop.create_future())
    # As recorded from katcp-python's v4 server (tests/data/katcp_v4_server_v4.txt,
    # scenario overlapping-requests): !echo arrives while ?slow is outstanding.
    assert tracker.handle_inform(reply(b"#echo part"))
    assert tracker.handle_reply(reply(b"!echo ok during-slow"))
    assert echo.future.result()[0].arguments == [b"ok", b"during-slow"]
    assert [m.arguments for m in echo.future.result()[1]] == [[b"part"]]
    assert not slow.future.done()
    assert tracker.handle_reply(reply(b"!slow ok"))
    assert slow.future.done()
    assert not tracker.has_pending()


async def test_same_name_is_first_in_first_out() -> None:
    loop = asyncio.get_running_loop()
    tracker = RequestTracker()
    first = tracker.add("slow", None, loop.create_future())
    second = tracker.add("slow", None, loop.create_future())
    assert tracker.handle_reply(reply(b"!slow ok 1"))
    assert first.future.result()[0].arguments == [b"ok", b"1"]
    assert not second.future.done()
    assert tracker.handle_reply(reply(b"!slow ok 2"))
    assert second.future.result()[0].arguments == [b"ok", b"2"]
    assert not tracker.handle_reply(reply(b"!slow ok 3"))  # unexpected


async def test_abandoned_request_swallows_its_late_reply() -> None:
    loop = asyncio.get_running_loop()
    tracker = RequestTracker()
    first = tracker.add("slow", None, loop.create_future())
    second = tracker.add("slow", None, loop.create_future())
    tracker.abandon(first)  # timed out
    assert tracker.handle_inform(reply(b"#slow late-inform"))  # dropped, not given to second
    assert tracker.handle_reply(reply(b"!slow ok late"))
    assert not second.future.done()
    assert tracker.handle_reply(reply(b"!slow ok mine"))
    reply_msg, informs = second.future.result()
    assert reply_msg.arguments == [b"ok", b"mine"]
    assert informs == []
