"""DeviceServer.authorize: called before every request, denies with a clear fail, costs nothing off.

Most tests run on the virtual-clock loop; those that depend on the real
peer address or on TLS identities use real sockets on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any, AsyncIterator, FrozenSet, List, Optional, Tuple

import pytest

import aiokatcp
from aiokatcp.server import DeviceServer, RequestContext
from aiokatcp.testing import running
from helpers import ScriptedPeer
from security_helpers import SecDevice, TestPKI, open_peer, secure_device
from test_tls import BEFORE, _normalise, run_script


class GuardedDevice(SecDevice):
    """Denies the names in `denied`; records every call it gets."""

    def __init__(self, denied: FrozenSet[str] = frozenset(), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.denied = denied
        self.calls: List[Tuple[str, Optional[int], aiokatcp.Address]] = []
        self.gate: Optional[asyncio.Event] = None
        self.entered = asyncio.Event()
        self.error: Optional[Exception] = None

    async def authorize(self, ctx: RequestContext, name: str) -> bool:
        assert name == ctx.req.name
        self.calls.append((name, ctx.req.mid, ctx.conn.address))
        self.entered.set()
        if self.gate is not None and name == "echo":
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return name not in self.denied


@asynccontextmanager
async def peer_of(server: DeviceServer) -> AsyncIterator[ScriptedPeer]:
    await server.start()
    try:
        async with await open_peer(server.port) as peer:
            await peer.expect_connect()
            yield peer
    finally:
        await asyncio.wait_for(server.stop(), 30)


DENIED_ECHO = b"!echo[1] fail request\\_echo\\_is\\_not\\_authorized"


async def test_denied_user_request(caplog: pytest.LogCaptureFixture) -> None:
    srv = GuardedDevice(frozenset({"echo"}))
    async with peer_of(srv) as peer:
        with caplog.at_level(logging.WARNING, logger="aiokatcp.server"):
            # (The denial comes with no informs: the handler, which would send one, never ran.)
            assert await peer.request(b"?echo[1] a b") == [DENIED_ECHO]
        assert await peer.request(b"?set 3") == [b"!set ok"]
    assert srv.handled == ["set"]
    denials = [r for r in caplog.records if "denied" in r.getMessage()]
    assert len(denials) == 1 and denials[0].levelno == logging.WARNING
    assert "echo" in denials[0].getMessage()


async def test_denied_standard_requests() -> None:
    srv = GuardedDevice(frozenset({"halt", "log-level", "client-list", "sensor-value"}))
    async with peer_of(srv) as peer:
        assert await peer.request(b"?halt") == [
            b"!halt fail request\\_halt\\_is\\_not\\_authorized"
        ]
        assert await peer.request(b"?log-level[2] debug") == [
            b"!log-level[2] fail request\\_log-level\\_is\\_not\\_authorized"
        ]
        assert await peer.request(b"?client-list") == [
            b"!client-list fail request\\_client-list\\_is\\_not\\_authorized"
        ]
        assert await peer.request(b"?sensor-value counter") == [
            b"!sensor-value fail request\\_sensor-value\\_is\\_not\\_authorized"
        ]
        # Still running, log level unchanged.
        assert await peer.request(b"?watchdog") == [b"!watchdog ok"]
        srv.denied = frozenset()
        assert await peer.request(b"?log-level") == [b"!log-level ok warn"]
    assert [name for name, _, _ in srv.calls][:4] == [
        "halt",
        "log-level",
        "client-list",
        "sensor-value",
    ]


async def test_unknown_request_is_authorized_first() -> None:
    srv = GuardedDevice(frozenset({"no-such"}))
    async with peer_of(srv) as peer:
        # Denied: the client does not even learn whether the request exists.
        assert await peer.request(b"?no-such") == [
            b"!no-such fail request\\_no-such\\_is\\_not\\_authorized"
        ]
        assert await peer.request(b"?other-unknown") == [
            b"!other-unknown invalid unknown\\_request\\_other-unknown"
        ]


async def test_authorize_sees_name_mid_and_address() -> None:
    srv = GuardedDevice()
    async with peer_of(srv) as peer:
        await peer.request(b"?watchdog[7]")
        conn_address = srv.calls[0][2]
        await peer.request(b"?echo x")
    assert [(name, mid) for name, mid, _ in srv.calls] == [("watchdog", 7), ("echo", None)]
    assert all(address == conn_address for _, _, address in srv.calls)


async def test_authorize_raising_fails_the_request() -> None:
    srv = GuardedDevice()
    srv.error = RuntimeError("directory unavailable")
    async with peer_of(srv) as peer:
        (reply,) = await peer.request(b"?echo[1] x")
    # As for a crashed handler: a fail reply carrying the traceback.
    assert reply.startswith(b"!echo[1] fail Traceback")
    assert b"RuntimeError:\\_directory\\_unavailable" in reply
    assert srv.handled == []


async def test_slow_authorize_holds_up_only_its_own_request() -> None:
    srv = GuardedDevice(frozenset({"oops"}))
    srv.gate = asyncio.Event()
    async with peer_of(srv) as peer:
        await peer.send(b"?echo[1] a", b"?set[2] 5", b"?oops[3]", b"?watchdog[4]")
        await asyncio.wait_for(srv.entered.wait(), 30)
        # Each request runs as its own task (as in aiokatcp 2.x): the later
        # ones are authorised and answered while the first is still waiting.
        await peer.expect(
            b"!set[2] ok",
            b"!oops[3] fail request\\_oops\\_is\\_not\\_authorized",
            b"!watchdog[4] ok",
        )
        assert srv.handled == ["set"]
        srv.gate.set()
        await peer.expect(b"#echo[1] a", b"!echo[1] ok a")
    assert srv.handled == ["set", "echo"]


class AllowAll(SecDevice):
    async def authorize(self, ctx: RequestContext, name: str) -> bool:
        return True


@pytest.mark.real_loop
async def test_allowing_hook_leaves_the_wire_unchanged() -> None:
    async with running(AllowAll()) as srv:
        assert _normalise(await run_script(srv.port)) == BEFORE


async def test_default_authorize_is_never_called(mocker: Any) -> None:
    srv = SecDevice()
    spy = mocker.patch.object(DeviceServer, "authorize", side_effect=AssertionError("called"))
    async with peer_of(srv) as peer:
        assert await peer.request(b"?watchdog") == [b"!watchdog ok"]
        assert await peer.request(b"?echo x") == [b"#echo x", b"!echo ok x"]
    spy.assert_not_called()


# -- the documented recipes (examples/secure_device.py) -------------------------------------


def _recipe_device(**kwargs: Any) -> DeviceServer:
    return secure_device.SecureDevice("127.0.0.1", 0, **kwargs)


class _AllowRest:
    async def authorize(self, ctx: RequestContext, name: str) -> bool:
        return True


class _AdminRecipe(secure_device.LoopbackOnlyAdmin, _AllowRest):
    pass


def _ctx_from(host: str) -> Any:
    """The part of a RequestContext the recipe looks at: the peer address."""
    address = aiokatcp.Address(ipaddress.ip_address(host), 1234)
    return SimpleNamespace(conn=SimpleNamespace(address=address))


@pytest.mark.parametrize("host", ["192.0.2.7", "2001:db8::7", "10.0.0.1"])
async def test_recipe_admin_denied_from_elsewhere(host: str) -> None:
    recipe = _AdminRecipe()
    assert not await recipe.authorize(_ctx_from(host), "halt")
    assert not await recipe.authorize(_ctx_from(host), "restart")
    assert await recipe.authorize(_ctx_from(host), "sensor-value")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1"])
async def test_recipe_admin_allowed_from_loopback(host: str) -> None:
    assert await _AdminRecipe().authorize(_ctx_from(host), "halt")


@pytest.mark.real_loop
async def test_recipe_admin_from_loopback_end_to_end() -> None:
    class Device(secure_device.LoopbackOnlyAdmin, SecDevice):
        pass

    async with peer_of(Device()) as peer:
        # Allowed from 127.0.0.1: it reaches dispatch (this device has no
        # restart hook, so ?restart is an unknown request, as in aiokatcp 2.3).
        assert await peer.request(b"?restart") == [b"!restart invalid unknown\\_request\\_restart"]


@pytest.mark.real_loop
async def test_recipe_read_only_by_certificate() -> None:
    pki = TestPKI()
    srv = _recipe_device(ssl=pki.server_context(require_client_cert=True))
    async with running(srv):
        port = srv.port
        async with await asyncio.wait_for(
            aiokatcp.Client.connect(
                "127.0.0.1", port, ssl=pki.client_context(common_name="viewer")
            ),
            30,
        ) as viewer:
            assert (await viewer.request("sensor-value", "counter"))[0] == [b"1"]
            with pytest.raises(aiokatcp.FailReply, match="request counter-reset is not authorized"):
                await viewer.request("counter-reset")
            with pytest.raises(aiokatcp.FailReply, match="not authorized"):
                await viewer.request("log-level", "debug")
        async with await asyncio.wait_for(
            aiokatcp.Client.connect(
                "127.0.0.1", port, ssl=pki.client_context(common_name="operator")
            ),
            30,
        ) as operator:
            await operator.request("counter-reset")
            assert (await operator.request("log-level"))[0] == [b"warn"]
            # ?halt also needs loopback, which 127.0.0.1 is: the device halts.
            await operator.request("halt")
        await asyncio.wait_for(srv.join(), 30)
