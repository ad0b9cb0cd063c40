#!/usr/bin/env python3
"""A device server with TLS and request authorisation: the recipes of ``doc/security.rst``.

Two independent mixins, combined in :class:`SecureDevice`:

- :class:`LoopbackOnlyAdmin`: ``?halt`` and ``?restart`` only from this machine;
- :class:`ReadOnlyByCertificate`: only clients presenting an operator's
  certificate may do more than read sensors.

Run it with a server certificate (and the CA that signs client certificates)::

    python examples/secure_device.py --cert server.pem --cafile clients-ca.pem --port 7147
    katcpcmd --cafile ca.pem --cert operator.pem localhost:7147 counter-reset
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
from typing import Any, Dict, FrozenSet, Optional

import aiokatcp


def common_name(cert: Optional[Dict[str, Any]]) -> Optional[str]:
    """The subject common name of a certificate as ``conn.peer_certificate`` gives it."""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class LoopbackOnlyAdmin:
    """Authorisation mixin: the requests in :attr:`ADMIN_REQUESTS` only from loopback."""

    ADMIN_REQUESTS: FrozenSet[str] = frozenset({"halt", "restart"})

    async def authorize(self, ctx: aiokatcp.RequestContext, name: str) -> bool:
        if name in self.ADMIN_REQUESTS and not ctx.conn.address.host.is_loopback:
            return False
        allowed: bool = await super().authorize(ctx, name)  # type: ignore[misc]
        return allowed


class ReadOnlyByCertificate:
    """Authorisation mixin: clients without an operator's certificate may only read.

    "Operator" means a client certificate (checked by the server's TLS
    context) whose common name is in :attr:`OPERATORS`; everybody else,
    including clients with no certificate at all, gets only
    :attr:`READ_ONLY_REQUESTS`.
    """

    OPERATORS: FrozenSet[str] = frozenset({"operator"})
    READ_ONLY_REQUESTS: FrozenSet[str] = frozenset(
        {
            "help",
            "watchdog",
            "version-list",
            "request-timeout-hint",
            "sensor-list",
            "sensor-value",
            "sensor-sampling",
            "sensor-sampling-clear",
        }
    )

    async def authorize(self, ctx: aiokatcp.RequestContext, name: str) -> bool:
        if name not in self.READ_ONLY_REQUESTS:
            if common_name(ctx.conn.peer_certificate) not in self.OPERATORS:
                return False
        allowed: bool = await super().authorize(ctx, name)  # type: ignore[misc]
        return allowed


class SecureDevice(LoopbackOnlyAdmin, ReadOnlyByCertificate, aiokatcp.DeviceServer):
    """A counter device protected by both recipes."""

    VERSION = "secure-device-1.0"
    BUILD_STATE = "secure-device-1.0.0"

    def __init__(self, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self.sensors.add(aiokatcp.Sensor(int, "counter", "A counter", default=0))

    async def request_counter_reset(self, ctx: aiokatcp.RequestContext) -> None:
        """Set the counter back to zero (operators only)."""
        self.sensors["counter"].set_value(0)


def server_context(cert: str, key: Optional[str], cafile: Optional[str]) -> ssl.SSLContext:
    """TLS context presenting `cert`; with `cafile`, clients must have a certificate it signed."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if cafile is not None:
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="")
    parser.add_argument("--port", type=int, default=7147)
    parser.add_argument("--cert", required=True, help="server certificate (PEM)")
    parser.add_argument("--key", help="private key of --cert (default: in --cert)")
    parser.add_argument("--cafile", help="CA for client certificates (then required)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    device = SecureDevice(
        args.host, args.port, ssl=server_context(args.cert, args.key, args.cafile)
    )
    await device.start()
    await device.join()


if __name__ == "__main__":
    asyncio.run(main())
