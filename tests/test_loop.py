"""The test loop really is virtual-time (guards the conftest wiring)."""

import asyncio
import time

import pytest


async def test_sleep_is_virtual() -> None:
    loop = asyncio.get_running_loop()
    start_virtual = loop.time()
    start_real = time.monotonic()
    await asyncio.sleep(3600)
    assert loop.time() - start_virtual == pytest.approx(3600)
    assert time.monotonic() - start_real < 60


@pytest.mark.real_loop
async def test_real_loop_marker() -> None:
    assert "solipsism" not in type(asyncio.get_running_loop()).__module__
