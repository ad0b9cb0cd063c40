"""Shared test set-up: every async test runs on async-solipsism's virtual-clock loop.

The loop comes from the public toolkit (:func:`aiokatcp.testing.virtual_clock_loop`),
whose pytest plugin is loaded too, so its own tests can use its fixtures.

The loop comes in through pytest-asyncio's ``pytest_asyncio_loop_factories``
hook (the ``event_loop_policy`` fixture pattern is deprecated and fails under
``filterwarnings = error``). With a virtual clock, ``await asyncio.sleep(60)``
costs nothing, and a test that would wait forever fails instead of hanging.
Sockets made with ``asyncio.start_server``/``open_connection`` live on the
solipsism in-memory network; real-socket tests opt out with the
``real_loop`` marker.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import AsyncIterator, Callable, Dict

import pytest
from hypothesis import HealthCheck, settings

from aiokatcp import Client
from aiokatcp.testing import PeerServer, virtual_clock_loop

pytest_plugins = ["aiokatcp.testing.plugin", "pytester"]

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_loop: run on a real asyncio loop (real sockets on 127.0.0.1/::1)"
    )
    if sys.version_info < (3, 11):
        # asyncio's SSL layer before 3.11 leaves the transport of a TLS connection that
        # failed its handshake or was aborted for the garbage collector, whose __del__
        # warning then fails whichever test is running (the 3.11+ SSL layer does not).
        config.addinivalue_line(
            "filterwarnings", "ignore:unclosed transport <asyncio.sslproto:ResourceWarning"
        )


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.get_closest_marker("real_loop") is not None:
        return {"real": asyncio.new_event_loop}
    return {"solipsism": virtual_clock_loop}


# -- fixtures shared by the client test modules ---------------------------------------------------


@pytest.fixture
def peers(katcp_peer_server: PeerServer) -> PeerServer:
    """A fake device listening on 127.0.0.1 (the plugin's ``katcp_peer_server``)."""
    return katcp_peer_server


@pytest.fixture
async def client(peers: PeerServer) -> AsyncIterator[Client]:
    """A client pointed at `peers`, not yet started (a module may define its own ``client``)."""
    client = Client("127.0.0.1", peers.port)
    yield client
    client.close()
    await client.wait_closed()
