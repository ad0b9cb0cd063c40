"""katcpcmd: exit codes and output, in-process on the virtual loop and end to end."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from typing import AsyncIterator, List

import pytest

import aiokatcp
from aiokatcp.server import DeviceServer
from aiokatcp.tools import katcpcmd


class CmdServer(DeviceServer):
    VERSION = "cmd-1.0"
    BUILD_STATE = "cmd-1.0.0"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.sensors.add(aiokatcp.Sensor(int, "counter", "A counter", default=1))
        self.sensors.add(aiokatcp.Sensor(float, "temp", "A temperature", "degC", default=20.5))

    async def request_echo(self, ctx: aiokatcp.RequestContext, *args: str) -> tuple:
        """Return the arguments."""
        for arg in args:
            ctx.inform(arg)
        return tuple(args)

    async def request_fail(self, ctx: aiokatcp.RequestContext) -> None:
        """Always fail."""
        raise aiokatcp.FailReply("as requested")

    async def request_shout(self, ctx: aiokatcp.RequestContext) -> None:
        """Send an asynchronous #log inform before replying."""
        self.mass_inform("log", "warn", 1700000000.0, "cmd.device", "hello there")
        self.mass_inform("something-else", 1)

    async def request_slow(self, ctx: aiokatcp.RequestContext) -> None:
        """Take a minute."""
        await asyncio.sleep(60)


@pytest.fixture
async def server() -> AsyncIterator[CmdServer]:
    server = CmdServer()
    await server.start()
    yield server
    await server.stop()


def address(server: DeviceServer) -> str:
    return f"127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def run(argv: List[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = await katcpcmd.amain(argv, out)
    return code, re.sub(r"\[\d+\]", "[N]", out.getvalue())


async def test_request_ok(server: CmdServer) -> None:
    code, out = await run([address(server), "echo", "hello world", "-3"])
    assert code == katcpcmd.EXIT_OK
    assert out.splitlines() == [
        "#echo[N] hello\\_world",
        "#echo[N] -3",
        "!echo[N] ok hello\\_world -3",
    ]


async def test_asynchronous_informs_printed(server: CmdServer) -> None:
    code, out = await run([address(server), "shout"])
    assert code == katcpcmd.EXIT_OK
    assert out.splitlines() == [
        "#log warn 1700000000.0 cmd.device hello\\_there",
        "#something-else 1",
        "!shout[N] ok",
    ]


async def test_request_fail_and_invalid(server: CmdServer) -> None:
    code, out = await run([address(server), "fail"])
    assert code == katcpcmd.EXIT_REPLY
    assert out == "!fail[N] fail as\\_requested\n"
    code, out = await run([address(server), "no-such-request"])
    assert code == katcpcmd.EXIT_REPLY
    assert out.startswith("!no-such-request[N] invalid")


async def test_request_timeout(server: CmdServer, capsys: pytest.CaptureFixture[str]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    code, _ = await run([address(server), "slow", "--timeout", "2"])
    assert code == katcpcmd.EXIT_TIMEOUT
    assert loop.time() - start == pytest.approx(2, abs=0.1)
    assert "no reply to ?slow within 2.0 s" in capsys.readouterr().err


async def test_connection_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = await run(["127.0.0.1:1234", "help"])
    assert code == katcpcmd.EXIT_CONNECTION
    assert "could not connect to 127.0.0.1:1234" in capsys.readouterr().err


async def test_connect_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    writers: List[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # accepts, but never says anything

    # The connection is accepted, but negotiation (5 s without #version-connect) takes
    # longer than the connect timeout.
    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        code, _ = await run([f"127.0.0.1:{port}", "help", "--connect-timeout", "1"])
        assert code == katcpcmd.EXIT_CONNECTION
        assert "timed out connecting" in capsys.readouterr().err
    finally:
        for writer in writers:
            writer.close()
        listener.close()
        await listener.wait_closed()


async def test_watch(server: CmdServer) -> None:
    async def change() -> None:
        await asyncio.sleep(1)
        server.sensors["counter"].set_value(2, timestamp=1700000000.0)

    task = asyncio.create_task(change())
    code, out = await run([address(server), "--watch", "counter", "temp", "--duration", "3"])
    await task
    assert code == katcpcmd.EXIT_OK
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("#sensor-status ") and lines[0].endswith(" 1 counter unknown 1")
    assert lines[1].endswith(" 1 temp unknown 20.5")
    assert lines[2] == "#sensor-status 1700000000.0 1 counter nominal 2"


async def test_watch_unknown_sensor(server: CmdServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = await run([address(server), "--watch", "counter", "nope", "--duration", "1"])
    assert code == katcpcmd.EXIT_REPLY
    assert "cannot watch" in capsys.readouterr().err


async def test_watch_connection_lost(server: CmdServer, capsys: pytest.CaptureFixture[str]) -> None:
    async def stop() -> None:
        await asyncio.sleep(1)
        await server.stop()

    task = asyncio.create_task(stop())
    code, _ = await run([address(server), "--watch", "counter"])
    await task
    assert code == katcpcmd.EXIT_CONNECTION
    assert "connection lost" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["7147"],  # neither a request nor --watch
        ["7147", "help", "--watch", "x"],
        ["7147", "help", "--duration", "1"],
        ["host:notaport", "help"],
        ["[::1]7147", "help"],
        ["70000", "help"],
        ["7147", "help", "--timeout", "0"],
    ],
)
async def test_usage_errors(argv: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc_info:
        await katcpcmd.amain(argv)
    assert exc_info.value.code == 2
    assert "usage: katcpcmd" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7147", ("localhost", 7147)),
        ("example.org:7147", ("example.org", 7147)),
        ("[::1]:7147", ("::1", 7147)),
        (":7147", ("localhost", 7147)),
    ],
)
def test_address_parsing(text: str, expected: tuple[str, int]) -> None:
    assert katcpcmd._address(text) == expected


@pytest.mark.real_loop
async def test_console_script_end_to_end() -> None:
    """Run the real entry point in a subprocess against a server on 127.0.0.1."""
    server = CmdServer("127.0.0.1", 0)
    await server.start()
    try:
        port = server.sockets[0].getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aiokatcp.tools.katcpcmd",
            f"127.0.0.1:{port}",
            "echo",
            "x",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, stderr
        lines = re.sub(r"\[\d+\]", "[N]", stdout.decode()).splitlines()
        assert lines == ["#echo[N] x", "!echo[N] ok x"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aiokatcp.tools.katcpcmd",
            f"127.0.0.1:{port}",
            "fail",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 2
        assert re.fullmatch(rb"!fail\[\d+\] fail as\\_requested\n", stdout)
    finally:
        await server.stop()


async def test_bad_request_name(server: CmdServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = await run([address(server), "not_a_valid_name!"])
    assert code == katcpcmd.EXIT_REPLY
    assert "name not_a_valid_name! is invalid" in capsys.readouterr().err  # (2.x text)


async def test_connection_lost_during_request(capsys: pytest.CaptureFixture[str]) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"#version-connect katcp-protocol 5.0-MI\n")
        await reader.readline()  # the request: hang up instead of replying
        writer.close()

    listener = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        code, _ = await run([f"127.0.0.1:{port}", "anything"])
    finally:
        listener.close()
        await listener.wait_closed()
    assert code == katcpcmd.EXIT_CONNECTION
    assert "connection lost" in capsys.readouterr().err
