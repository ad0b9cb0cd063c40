"""The client's connection life cycle: the task that drives the state machine.

Owned by :class:`aiokatcp.client.Client`, whose private state it works on
(this module is the other half of that class, split out by responsibility).
One task per client runs :func:`run`: connect, negotiate, stay connected,
back off, repeat, until the client is closed. The states, transitions and
invariants are documented in ``doc/dev/client-fsm.rst``; in short:

* only :meth:`Client._set_state` changes the state (it also fires callbacks
  and fails pending requests whenever no connection is usable);
* ``Client._conn`` is set exactly in NEGOTIATING, CONNECTED and DISCONNECTING;
* the connection callbacks (``Client._connection_lost``) make the
  transitions that must be immediate; everything else happens here;
* CLOSED is final.
"""

from __future__ import annotations

import asyncio
import enum
import random
import socket
from typing import TYPE_CHECKING

from ._client_helpers import parse_timeout_hints
from .connection import Connection
from .exceptions import ProtocolError

if TYPE_CHECKING:
    from .client import Client

__all__ = ["HAVE_CONNECTION", "State", "run"]


class State(enum.Enum):
    """Life-cycle states of a :class:`Client` (see ``doc/dev/client-fsm.rst``)."""

    CONNECTING = 1  #: opening the TCP connection (also the state before the loop runs)
    NEGOTIATING = 2  #: TCP is up; waiting to learn the protocol version
    CONNECTED = 3  #: ready for requests
    DISCONNECTING = 4  #: we are closing the connection and waiting for it to go
    SLEEPING = 5  #: waiting (back-off) before the next attempt
    CLOSED = 6  #: final: closed by the user or given up (``auto_reconnect=False``)


#: States in which a connection (``Client._conn``) exists.
HAVE_CONNECTION = frozenset({State.NEGOTIATING, State.CONNECTED, State.DISCONNECTING})


async def run(client: Client) -> None:
    """The life-cycle task: connect, negotiate, stay connected, back off, repeat."""
    try:
        while not client._closing:
            client._set_state(State.CONNECTING)
            await _run_connection(client)
            if client._closing or not client.auto_reconnect:
                break
            client._set_state(State.SLEEPING)
            client._backoff = min(client._backoff * 2, client._BACKOFF_MAX)
            delay = random.uniform(client._backoff / 2, client._backoff)
            client.logger.debug("Reconnecting in %.3f s", delay)
            await asyncio.sleep(delay)
    finally:
        conn = client._conn
        if conn is not None:  # cancelled (closed) with a connection still open
            client._set_state(State.DISCONNECTING)
            conn.close()
            await conn.wait_closed()
        client._set_state(State.CLOSED)
        if client._monitor is not None:
            client._monitor.close()
        for task in list(client._tasks):
            task.cancel()


async def _run_connection(client: Client) -> None:
    """One connection attempt and, if it succeeds, the connection's whole life."""
    loop = client.loop
    try:
        _, conn = await loop.create_connection(
            lambda: Connection(client, False, client._limit),
            client.host,
            client.port,
            ssl=client.ssl,
            server_hostname=client.server_hostname if client.ssl is not None else None,
        )
    except OSError as exc:
        client.logger.info("Failed to connect: %s", exc)
        client._fire_failed_connect(exc)
        return
    if client.keepalive is not None:
        _enable_tcp_keepalive(conn, client.keepalive)
    lost = client._lost
    negotiated = client._negotiated
    assert lost is not None and negotiated is not None
    try:
        await _negotiate(client, negotiated)
    except ProtocolError as exc:
        client._fire_failed_connect(exc)
        client._drop_connection(exc)
        await lost
        return
    except ConnectionError as exc:
        client._fire_failed_connect(exc)
        await lost
        return
    if client._conn is not conn:  # pragma: no cover - lost without an exception
        await lost
        return
    client._set_state(State.CONNECTED)
    keepalive = None
    if client.keepalive is not None:
        keepalive = loop.create_task(_keepalive(client, conn, client.keepalive))
    try:
        await lost
    finally:
        if keepalive is not None:
            keepalive.cancel()
            await asyncio.wait({keepalive})


async def _negotiate(client: Client, negotiated: asyncio.Future[None]) -> None:
    """Wait for the protocol version (or assume one), then fetch timeout hints."""
    done, _ = await asyncio.wait({negotiated}, timeout=client.negotiation_timeout)
    if not done:
        client.logger.warning(
            "No #version-connect within %g s: assuming a server without protocol flags "
            "(no message ids; requests are serialised)",
            client.negotiation_timeout,
        )
        client._version_assumed = True
        client._set_protocol(None, frozenset())
        negotiated.cancel()  # a late #version-connect is then handled as an update
        return
    negotiated.result()  # raises ProtocolError or ConnectionError
    if "T" in client.protocol_flags:
        await _fetch_timeout_hints(client)


async def _fetch_timeout_hints(client: Client) -> None:
    try:
        reply, informs = await client._send_request(
            "request-timeout-hint", (), client.negotiation_timeout
        )
    except asyncio.TimeoutError:
        client.logger.warning("No reply to ?request-timeout-hint; not using timeout hints")
        return
    if not reply.reply_ok():
        client.logger.warning("?request-timeout-hint failed: %s", reply)
        return
    client._timeout_hints = parse_timeout_hints(informs, client.logger)


def _enable_tcp_keepalive(conn: Connection, interval: float) -> None:
    """Let the kernel probe an idle connection too (it sees a dead peer even mid-request)."""
    sock = conn.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        seconds = max(1, int(interval))
        for option in ("TCP_KEEPIDLE", "TCP_KEEPINTVL"):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), seconds)
        if hasattr(socket, "TCP_KEEPCNT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError as exc:  # pragma: no cover - depends on the platform
        conn.logger.debug("Could not enable TCP keepalive: %s", exc)


async def _keepalive(client: Client, conn: Connection, interval: float) -> None:
    """Drop the connection if the server stays silent and ignores ``?watchdog``.

    While requests are outstanding the check is skipped: the server may run a
    connection's requests in order, so a ``?watchdog`` would wait behind a long
    request and look like a dead peer. TCP keepalive covers that case.
    """
    seen = client._rx_count
    while client._conn is conn:
        await asyncio.sleep(interval)
        if client._rx_count != seen or len(client._tracker):
            seen = client._rx_count
            continue
        try:
            await client._send_request("watchdog", (), interval)
        except asyncio.TimeoutError:
            client.logger.warning(
                "No reply to ?watchdog within %g s: dropping the connection", interval
            )
            client._drop_connection(
                ConnectionResetError(f"Server did not answer ?watchdog within {interval} s"),
                abort=True,
            )
            return
        except ConnectionError:
            return
        seen = client._rx_count
