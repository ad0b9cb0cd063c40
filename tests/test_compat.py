"""aiokatcp._compat: the one timeout used everywhere (asyncio.timeout or its backport)."""

import asyncio

import pytest

from aiokatcp._compat import timeout


async def test_timeout_expires() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(asyncio.TimeoutError):
        async with timeout(2):
            await asyncio.sleep(60)
    assert loop.time() - start == pytest.approx(2)


async def test_timeout_none_and_in_time() -> None:
    async with timeout(None):
        await asyncio.sleep(60)
    async with timeout(2):
        await asyncio.sleep(1)
