"""Security test helpers: certificates made for the test run (``trustme``), a device, a peer.

One private CA signs a server certificate for ``localhost``/``127.0.0.1``/``::1``
and client certificates with chosen common names; a second, unrelated CA
stands for "someone else's" CA. Nothing is written outside a temporary
directory and nothing is trusted system-wide.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import ssl
from typing import Optional

import trustme

import aiokatcp
from aiokatcp.server import DeviceServer
from helpers import ScriptedPeer

__all__ = [
    "TIMESTAMP",
    "SecDevice",
    "TestPKI",
    "common_name",
    "open_peer",
    "secure_device",
]

_EXAMPLE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "secure_device.py"
)
_spec = importlib.util.spec_from_file_location("example_secure_device", _EXAMPLE)
assert _spec is not None and _spec.loader is not None
#: ``examples/secure_device.py`` (the documented recipes), imported by path.
secure_device = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(secure_device)
common_name = secure_device.common_name

#: Fixed sensor timestamp, so that transcripts are byte-for-byte reproducible.
TIMESTAMP = 1700000000.25


class TestPKI:
    """A CA, a server certificate and helpers to make client and server contexts."""

    __test__ = False  # not a test class despite its name

    def __init__(self) -> None:
        self.ca = trustme.CA(organization_name="aiokatcp test CA")
        self.other_ca = trustme.CA(organization_name="someone else's CA")
        self.server_cert = self.ca.issue_cert("localhost", "127.0.0.1", "::1")

    def server_context(self, *, require_client_cert: bool = False) -> ssl.SSLContext:
        """Context for a server presenting :attr:`server_cert`."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(ctx)
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            self.ca.configure_trust(ctx)
        return ctx

    def client_context(
        self, *, common_name: Optional[str] = None, trust_other_ca: bool = False
    ) -> ssl.SSLContext:
        """Context for a client trusting our CA (or the other one) and, if asked, with a cert.

        With `common_name` the client presents a certificate with that
        subject common name, signed by our CA.
        """
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        (self.other_ca if trust_other_ca else self.ca).configure_trust(ctx)
        if common_name is not None:
            cert = self.ca.issue_cert(f"{common_name}.clients.invalid", common_name=common_name)
            cert.configure_cert(ctx)
        return ctx

    def foreign_client_context(self, common_name: str) -> ssl.SSLContext:
        """A client trusting our CA but presenting a certificate from the other CA."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(ctx)
        cert = self.other_ca.issue_cert(f"{common_name}.clients.invalid", common_name=common_name)
        cert.configure_cert(ctx)
        return ctx


class SecDevice(DeviceServer):
    """A small device: one user request with informs, one failing request, two sensors."""

    VERSION = "sec-1.0"
    BUILD_STATE = "sec-1.0.0"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **kwargs: object) -> None:
        super().__init__(host, port, **kwargs)  # type: ignore[arg-type]
        self.handled: list[str] = []
        self.sensors.add(aiokatcp.Sensor(int, "counter", "A counter", default=7))
        self.sensors["counter"].set_value(7, timestamp=TIMESTAMP)
        self.sensors.add(aiokatcp.Sensor(str, "name", "A name", default="a b\\c"))
        self.sensors["name"].set_value("a b\\c", timestamp=TIMESTAMP)

    async def request_echo(self, ctx: aiokatcp.RequestContext, *args: str) -> tuple:
        """Inform and return the arguments."""
        self.handled.append("echo")
        for arg in args:
            ctx.inform(arg)
        return tuple(args)

    async def request_oops(self, ctx: aiokatcp.RequestContext) -> None:
        """Always fail."""
        self.handled.append("oops")
        raise aiokatcp.FailReply("as requested")

    def request_set(self, ctx: aiokatcp.RequestContext, value: int) -> None:
        """Set the counter (a plain def handler)."""
        self.handled.append("set")
        self.sensors["counter"].set_value(value, timestamp=TIMESTAMP)

    async def request_whoami(self, ctx: aiokatcp.RequestContext) -> tuple:
        """Say whether the connection is TLS and whose certificate the client presented."""
        tls = "tls" if ctx.conn.ssl_object is not None else "plain"
        return tls, common_name(ctx.conn.peer_certificate) or "anonymous"


async def open_peer(
    port: int,
    ssl_context: Optional[ssl.SSLContext] = None,
    *,
    host: str = "127.0.0.1",
    server_hostname: Optional[str] = None,
) -> ScriptedPeer:
    """A raw-line peer on 127.0.0.1 (over TLS when `ssl_context` is given)."""
    if ssl_context is None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
    else:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host, port, ssl=ssl_context, server_hostname=server_hostname or host
            ),
            30,
        )
    return ScriptedPeer(reader, writer, timeout=30)
