"""TLS for servers and clients: handshake, CA checks, client certificates, reconnects, wire.

Real sockets on 127.0.0.1 and a real event loop (the virtual-clock loop has
no TLS); every wait is bounded.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import ssl
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

import pytest

import aiokatcp
from aiokatcp.server import DeviceServer
from aiokatcp.tools import katcpcmd
from security_helpers import SecDevice, TestPKI, open_peer

#: A fixed script of request lines (standard and user requests, ids, escapes, errors).
SCRIPT: List[bytes] = [
    b"?watchdog",
    b"?watchdog[1]",
    b"?help watchdog",
    b"?help[2] no-such",
    b"?echo a\\_b \\\\ \\0 c",
    b"?echo[3]",
    b"?oops[4]",
    b"?set x",
    b"?set[5] 42",
    b"?sensor-value[6] counter",
    b"?sensor-value /./",
    b"?sensor-list[7] name",
    b"?log-level[8]",
    b"?no-such-request[9] 1 2",
    b"?request-timeout-hint",
    b"?version-list[10]",
]


async def run_script(port: int, ssl_context: Optional[ssl.SSLContext] = None) -> bytes:
    """Send :data:`SCRIPT` a request at a time; return all bytes received (connect informs too)."""
    peer = await open_peer(port, ssl_context)
    try:
        received = b"".join(line + b"\n" for line in await peer.expect_connect())
        for line in SCRIPT:
            received += b"".join(got + b"\n" for got in await peer.request(line))
        return received
    finally:
        await peer.close()


def _normalise(transcript: bytes) -> bytes:
    """Blank out the library version (the only part that changes from release to release)."""
    return re.sub(rb"aiokatcp-\S+ aiokatcp-\S+", b"aiokatcp-X aiokatcp-X", transcript)


#: What :data:`SCRIPT` got from the server before TLS and authorisation existed
#: (recorded on main at 5b6c2ae, the server core of issue 9, before issue 16's hooks).
BEFORE = _normalise(
    b"#version-connect katcp-protocol 5.1-MIB\n"
    b"#version-connect katcp-library aiokatcp-2.4 aiokatcp-2.4.0\n"
    b"#version-connect katcp-device sec-1.0 sec-1.0.0\n"
    b"!watchdog ok\n"
    b"!watchdog[1] ok\n"
    b"#help watchdog Check\\_that\\_the\\_server\\_is\\_still\\_alive.\n"
    b"!help ok 1\n"
    b"!help[2] fail request\\_no-such\\_is\\_not\\_known\n"
    b"#echo a\\_b\n"
    b"#echo \\\\\n"
    b"#echo \\0\n"
    b"#echo c\n"
    b"!echo ok a\\_b \\\\ \\0 c\n"
    b"!echo[3] ok\n"
    b"!oops[4] fail as\\_requested\n"
    b"!set fail invalid\\_literal\\_for\\_int()\\_with\\_base\\_10:\\_b'x'\n"
    b"!set[5] ok\n"
    b"#sensor-value[6] 1700000000.25 1 counter nominal 42\n"
    b"!sensor-value[6] ok 1\n"
    b"#sensor-value 1700000000.25 1 counter nominal 42\n"
    b"#sensor-value 1700000000.25 1 name nominal a\\_b\\\\c\n"
    b"!sensor-value ok 2\n"
    b"#sensor-list[7] name A\\_name \\@ string\n"
    b"!sensor-list[7] ok 1\n"
    b"!log-level[8] ok warn\n"
    b"!no-such-request[9] invalid unknown\\_request\\_no-such-request\n"
    b"!request-timeout-hint invalid unknown\\_request\\_request-timeout-hint\n"
    b"#version-list[10] katcp-protocol 5.1-MIB\n"
    b"#version-list[10] katcp-library aiokatcp-2.4 aiokatcp-2.4.0\n"
    b"#version-list[10] katcp-device sec-1.0 sec-1.0.0\n"
    b"!version-list[10] ok 3\n"
)


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI()


@asynccontextmanager
async def running(server: DeviceServer) -> AsyncIterator[DeviceServer]:
    await server.start()
    try:
        yield server
    finally:
        await asyncio.wait_for(server.stop(), 30)


async def connect(port: int, **kwargs: Any) -> aiokatcp.Client:
    """``Client.connect`` to 127.0.0.1, bounded."""
    return await asyncio.wait_for(aiokatcp.Client.connect("127.0.0.1", port, **kwargs), 30)


# -- the wire --------------------------------------------------------------------------------


@pytest.mark.real_loop
async def test_plain_wire_is_unchanged() -> None:
    """No ssl and no authorize override: the bytes are exactly those from before."""
    async with running(SecDevice()) as srv:
        assert _normalise(await run_script(srv.port)) == BEFORE


@pytest.mark.real_loop
async def test_tls_wire_carries_the_same_bytes(pki: TestPKI) -> None:
    async with running(SecDevice(ssl=pki.server_context())) as srv:
        transcript = await run_script(srv.port, pki.client_context())
    assert _normalise(transcript) == BEFORE


# -- handshake and verification --------------------------------------------------------------


@pytest.mark.real_loop
async def test_client_over_tls(pki: TestPKI) -> None:
    async with running(SecDevice(ssl=pki.server_context())) as srv:
        client = await connect(srv.port, ssl=pki.client_context(), server_hostname="localhost")
        async with client:
            assert client.ssl is not None and client.server_hostname == "localhost"
            reply, informs = await client.request("echo", "x y")
            assert reply == [b"x y"] and [m.arguments for m in informs] == [[b"x y"]]
            assert await client.request("whoami") == ([b"tls", b"anonymous"], [])


@pytest.mark.real_loop
async def test_plain_server_reports_plain_connection() -> None:
    async with running(SecDevice()) as srv:
        async with await connect(srv.port) as client:
            assert await client.request("whoami") == ([b"plain", b"anonymous"], [])


@pytest.mark.real_loop
async def test_wrong_ca_is_refused(pki: TestPKI) -> None:
    async with running(SecDevice(ssl=pki.server_context())) as srv:
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(
                srv.port, auto_reconnect=False, ssl=pki.client_context(trust_other_ca=True)
            )
        # The server is unharmed.
        async with await connect(srv.port, ssl=pki.client_context()) as client:
            await client.request("watchdog")


@pytest.mark.real_loop
async def test_wrong_hostname_is_refused(pki: TestPKI) -> None:
    async with running(SecDevice(ssl=pki.server_context())) as srv:
        with pytest.raises(ssl.SSLCertVerificationError, match="match"):
            await connect(
                srv.port,
                auto_reconnect=False,
                ssl=pki.client_context(),
                server_hostname="device.example.org",
            )


def test_server_hostname_needs_ssl() -> None:
    with pytest.raises(ValueError, match="server_hostname"):
        aiokatcp.Client("127.0.0.1", 1, server_hostname="localhost")


@pytest.mark.real_loop
async def test_plain_text_client_gets_nothing_from_a_tls_server(pki: TestPKI) -> None:
    async with running(SecDevice(ssl=pki.server_context())) as srv:
        peer = await open_peer(srv.port)
        try:
            await peer.send(b"?watchdog")
            # The server's TLS layer rejects the bytes and closes: no KATCP line comes back.
            rest = await asyncio.wait_for(peer.reader.read(), 30)
            assert b"#version-connect" not in rest and b"!watchdog" not in rest
        finally:
            await peer.close()
        async with await connect(srv.port, ssl=pki.client_context()) as client:
            await client.request("watchdog")


# -- client certificates ---------------------------------------------------------------------


async def _refused(port: int, ctx: ssl.SSLContext) -> None:
    """Check that a TLS client with `ctx` never gets a KATCP line from the server."""
    try:
        peer = await open_peer(port, ctx)
    except (ssl.SSLError, ConnectionError):
        return  # refused during the handshake (TLS 1.2)
    try:
        # (TLS 1.3: the client's side of the handshake completes; the server then
        # refuses, and the client sees an alert or just the end of the stream.)
        try:
            data = await asyncio.wait_for(peer.reader.read(), 30)
        except (ssl.SSLError, ConnectionError):
            data = b""
        assert data == b"", f"server sent {data!r} to an unauthenticated client"
    finally:
        await peer.close()


@pytest.mark.real_loop
async def test_client_certificate_required(pki: TestPKI) -> None:
    async with running(SecDevice(ssl=pki.server_context(require_client_cert=True))) as srv:
        port = srv.port
        await _refused(port, pki.client_context())  # no certificate
        await _refused(port, pki.foreign_client_context("mallory"))  # signed by another CA
        async with await connect(port, ssl=pki.client_context(common_name="alice")) as client:
            assert await client.request("whoami") == ([b"tls", b"alice"], [])


# -- reconnecting ----------------------------------------------------------------------------


@pytest.mark.real_loop
async def test_reconnect_keeps_tls(pki: TestPKI) -> None:
    ctx = pki.server_context(require_client_cert=True)
    srv = SecDevice(ssl=ctx)
    async with running(srv):
        port = srv.port
        client = await connect(port, ssl=pki.client_context(common_name="bob"))
    try:
        # The server went away; a new one (TLS only, client certificates required)
        # takes its port, and the client finds it again on its own.
        await asyncio.wait_for(client.wait_disconnected(), 30)
        async with running(SecDevice(port=port, ssl=ctx)):
            await asyncio.wait_for(client.wait_connected(), 30)
            assert await client.request("whoami") == ([b"tls", b"bob"], [])
    finally:
        client.close()
        await asyncio.wait_for(client.wait_closed(), 30)


# -- katcpcmd --------------------------------------------------------------------------------


async def _katcpcmd(argv: List[str]) -> Tuple[int, str]:
    out = io.StringIO()
    status = await asyncio.wait_for(katcpcmd.amain(argv, out=out), 60)
    return status, out.getvalue()


@pytest.fixture(scope="module")
def pem_files(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, str]:
    path = tmp_path_factory.mktemp("pem")
    files = {"ca": path / "ca.pem", "other": path / "other.pem", "cert": path / "carol.pem"}
    pki.ca.cert_pem.write_to_path(str(files["ca"]))
    pki.other_ca.cert_pem.write_to_path(str(files["other"]))
    carol = pki.ca.issue_cert("carol.clients.invalid", common_name="carol")
    carol.private_key_and_cert_chain_pem.write_to_path(str(files["cert"]))
    return {key: str(value) for key, value in files.items()}


@pytest.mark.real_loop
async def test_katcpcmd_tls(pki: TestPKI, pem_files: Dict[str, str]) -> None:
    async with running(SecDevice(ssl=pki.server_context(require_client_cert=True))) as srv:
        address = f"127.0.0.1:{srv.port}"
        status, out = await _katcpcmd(
            ["--cafile", pem_files["ca"], "--cert", pem_files["cert"], address, "whoami"]
        )
        assert status == katcpcmd.EXIT_OK
        assert re.fullmatch(r"!whoami(\[\d+\])? ok tls carol\n", out)


@pytest.mark.real_loop
async def test_katcpcmd_wrong_ca(
    pki: TestPKI, pem_files: Dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    async with running(SecDevice(ssl=pki.server_context())) as srv:
        address = f"127.0.0.1:{srv.port}"
        status, _ = await _katcpcmd(["--cafile", pem_files["other"], address, "watchdog"])
        assert status == katcpcmd.EXIT_CONNECTION
        assert "certificate verify failed" in capsys.readouterr().err


@pytest.mark.real_loop
async def test_katcpcmd_insecure_warns(pki: TestPKI, capsys: pytest.CaptureFixture[str]) -> None:
    async with running(SecDevice(ssl=pki.server_context())) as srv:
        address = f"127.0.0.1:{srv.port}"
        status, out = await _katcpcmd(["--insecure", address, "whoami"])
        assert status == katcpcmd.EXIT_OK
        assert re.fullmatch(r"!whoami(\[\d+\])? ok tls anonymous\n", out)
        assert "NOT verified" in capsys.readouterr().err


async def test_katcpcmd_key_needs_cert() -> None:
    with pytest.raises(SystemExit):
        await katcpcmd.amain(["--key", "k.pem", "127.0.0.1:1", "watchdog"])


async def test_katcpcmd_missing_cert_file(capsys: pytest.CaptureFixture[str]) -> None:
    status = await katcpcmd.amain(["--cert", "/nonexistent/c.pem", "127.0.0.1:1", "watchdog"])
    assert status == katcpcmd.EXIT_CONNECTION
    assert "cannot set up TLS" in capsys.readouterr().err


@pytest.mark.real_loop
async def test_tls_close_is_quiet(pki: TestPKI, caplog: pytest.LogCaptureFixture) -> None:
    """A TLS peer closing is an ordinary close (no asyncio half-close warning)."""
    async with running(SecDevice(ssl=pki.server_context())) as srv:
        peer = await open_peer(srv.port, pki.client_context())
        await peer.expect_connect()
        assert await peer.request(b"?watchdog") == [b"!watchdog ok"]
        await peer.close()
        async with await connect(srv.port, ssl=pki.client_context()) as client:
            await client.request("watchdog")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


@pytest.mark.real_loop
async def test_katcpcmd_tls_uses_system_cas(
    pki: TestPKI, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--tls`` alone verifies against the system's CAs, which do not know the test CA."""
    async with running(SecDevice(ssl=pki.server_context())) as srv:
        status, _ = await _katcpcmd(["--tls", f"127.0.0.1:{srv.port}", "watchdog"])
        assert status == katcpcmd.EXIT_CONNECTION
        assert "certificate verify failed" in capsys.readouterr().err
