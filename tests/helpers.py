"""Test helpers shared by the test modules.

The scripted, line-level peer (:class:`ScriptedPeer`, :class:`PeerServer`)
is the public :mod:`aiokatcp.testing` toolkit; it is re-exported here so the
test modules' imports keep working. It talks raw bytes over an asyncio
stream (solipsism's in-memory network in the normal tests, loopback in
``real_loop`` tests), so a test states the exact wire lines it sends and
expects.
"""

from __future__ import annotations

from hypothesis import strategies as st

from aiokatcp import Client, Message
from aiokatcp.testing import Expected, PeerServer, ScriptedPeer

__all__ = ["Expected", "PeerServer", "ScriptedPeer", "connected", "messages"]


async def connected(
    peers: PeerServer, client: Client, greeting: bytes = PeerServer.DEFAULT_GREETING
) -> ScriptedPeer:
    """Accept `client`'s connection to `peers`, greet it, and wait until it is connected."""
    peer = await peers.accept(greeting)
    await client.wait_connected()
    return peer


def messages(max_args: int, max_arg_size: int) -> st.SearchStrategy[Message]:
    """Hypothesis strategy for arbitrary valid messages (binary arguments included)."""
    return st.builds(
        lambda mtype, name, args, mid: Message(mtype, name, *args, mid=mid),
        st.sampled_from(list(Message.Type)),
        st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,10}\Z"),
        st.lists(st.binary(max_size=max_arg_size), max_size=max_args),
        st.one_of(st.none(), st.integers(1, 2**31 - 1)),
    )
