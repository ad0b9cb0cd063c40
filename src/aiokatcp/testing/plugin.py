"""pytest plugin: fixtures for testing KATCP devices and clients, and an opt-in virtual clock.

Load it explicitly, in the top-level ``conftest.py`` of your test suite::

    pytest_plugins = ["aiokatcp.testing.plugin"]

(or with ``pytest -p aiokatcp.testing.plugin``). It is deliberately not
registered as an automatically loaded ``pytest11`` plugin: installing
aiokatcp must not add fixtures or hooks to every test suite in the
environment. Loading it adds the fixtures below and the ``virtual_clock``
marker; tests that use neither run exactly as before, on the loop your
configuration gives them.

Requires pytest-asyncio; the marker needs pytest-asyncio 1.4 or later (for
its ``pytest_asyncio_loop_factories`` hook) and async-solipsism.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Callable, Dict, List, Optional

import pytest
import pytest_asyncio

from aiokatcp.client import Client
from aiokatcp.server import DeviceServer
from aiokatcp.testing import PeerServer, ScriptedPeer, client_for, running, virtual_clock_loop

__all__ = [
    "katcp_client",
    "katcp_device",
    "katcp_peer",
    "katcp_peer_server",
    "katcp_server",
    "pytest_asyncio_loop_factories",
    "pytest_collection_modifyitems",
    "pytest_configure",
]

MARKER = "virtual_clock"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``virtual_clock`` marker."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}: run this async test on async-solipsism's virtual-clock loop "
        "(in-memory network: no real sockets)",
    )


def _default_loop() -> asyncio.AbstractEventLoop:
    # What pytest-asyncio does when no hook gives a factory: ask the current policy.
    return asyncio.get_event_loop_policy().new_event_loop()


@pytest.hookimpl(trylast=True, optionalhook=True)
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Optional[Dict[str, Callable[[], asyncio.AbstractEventLoop]]]:
    """Give tests marked ``virtual_clock`` the virtual-clock loop.

    Any other test gets the loop it would get without this plugin (the
    current event loop policy's). This implementation runs last, so a
    ``pytest_asyncio_loop_factories`` of your own conftest takes precedence.
    """
    if item.get_closest_marker(MARKER) is not None:
        return {MARKER: virtual_clock_loop}
    return {"default": _default_loop}


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: List[pytest.Item]
) -> None:
    """Refuse the marker where it could not take effect, rather than ignore it."""
    if not any(item.get_closest_marker(MARKER) is not None for item in items):
        return
    hook = getattr(config.hook, "pytest_asyncio_loop_factories", None)
    if hook is None or hook.spec is None:
        raise pytest.UsageError(
            f"the {MARKER} marker needs pytest-asyncio >= 1.4 (pytest_asyncio_loop_factories)"
        )
    try:
        virtual_clock_loop().close()  # fail now, clearly, if async-solipsism is missing
    except ImportError as exc:
        raise pytest.UsageError(f"the {MARKER} marker: {exc}") from exc


@pytest.fixture
def katcp_device() -> DeviceServer:
    """The device server under test: override this fixture.

    Define it in your conftest or test module, returning a new, unstarted
    server, normally on port 0::

        @pytest.fixture
        def katcp_device() -> MyDevice:
            return MyDevice("127.0.0.1", 0)
    """
    pytest.fail(
        "the katcp_server fixture needs a katcp_device fixture returning your "
        'unstarted DeviceServer (for example MyDevice("127.0.0.1", 0))',
        pytrace=False,
    )


@pytest_asyncio.fixture
async def katcp_server(katcp_device: DeviceServer) -> AsyncIterator[DeviceServer]:
    """`katcp_device`, running (see :func:`aiokatcp.testing.running`)."""
    async with running(katcp_device) as server:
        yield server


@pytest_asyncio.fixture
async def katcp_client(katcp_server: DeviceServer) -> AsyncIterator[Client]:
    """A :class:`.Client` connected to `katcp_server` (see :func:`aiokatcp.testing.client_for`)."""
    async with client_for(katcp_server) as client:
        yield client


@pytest_asyncio.fixture
async def katcp_peer(katcp_server: DeviceServer) -> AsyncIterator[ScriptedPeer]:
    """A raw-line :class:`.ScriptedPeer` connected to `katcp_server`, past its greeting."""
    async with await ScriptedPeer.connect_to(katcp_server) as peer:
        await peer.expect_connect()
        yield peer


@pytest_asyncio.fixture
async def katcp_peer_server() -> AsyncIterator[PeerServer]:
    """A listening fake device (:class:`.PeerServer`) on 127.0.0.1, closed afterwards."""
    async with PeerServer() as server:
        yield server
