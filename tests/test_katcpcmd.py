"""katcpcmd: exit codes and output, in-process on the virtual loop and end to end."""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
from typing import AsyncIterator, Callable, List, Optional

import pytest

import aiokatcp
from aiokatcp.server import DeviceServer
from aiokatcp.tools import katcpcmd


class CmdServer(DeviceServer):
    VERSION = "cmd-1.0"
    BUILD_STATE = "cmd-1.0.0"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.proceed = asyncio.Event()
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

    async def request_calibrate(self, ctx: aiokatcp.RequestContext) -> None:
        """Report progress, then finish when the test says so."""
        ctx.inform("started")
        await self.proceed.wait()
        ctx.inform("finished")

    async def request_logs(self, ctx: aiokatcp.RequestContext) -> None:
        """Send #log messages at three levels."""
        for level in ("debug", "warn", "error"):
            self.mass_inform("log", level, 1700000000.0, "cmd.device", f"a {level} message")


@pytest.fixture
async def server() -> AsyncIterator[CmdServer]:
    server = CmdServer()
    await server.start()
    yield server
    await server.stop()


def address(server: DeviceServer) -> str:
    return f"127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def run(argv: List[str], out: Optional[io.StringIO] = None) -> tuple[int, str]:
    out = io.StringIO() if out is None else out
    code = await katcpcmd.amain(argv, out)
    return code, re.sub(r"\[\d+\]", "[N]", out.getvalue())


async def raw(argv: List[str]) -> tuple[int, str]:
    return await run(["--raw", *argv])


async def test_request_ok(server: CmdServer) -> None:
    code, out = await raw([address(server), "echo", "hello world", "-3"])
    assert code == katcpcmd.EXIT_OK
    assert out.splitlines() == [
        "#echo[N] hello\\_world",
        "#echo[N] -3",
        "!echo[N] ok hello\\_world -3",
    ]


async def test_asynchronous_informs_printed(server: CmdServer) -> None:
    code, out = await raw([address(server), "shout"])
    assert code == katcpcmd.EXIT_OK
    assert out.splitlines() == [
        "#log warn 1700000000.0 cmd.device hello\\_there",
        "#something-else 1",
        "!shout[N] ok",
    ]


async def test_request_fail_and_invalid(server: CmdServer) -> None:
    code, out = await raw([address(server), "fail"])
    assert code == katcpcmd.EXIT_REPLY
    assert out == "!fail[N] fail as\\_requested\n"
    code, out = await raw([address(server), "no-such-request"])
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
    code, out = await raw([address(server), "--watch", "counter", "temp", "--duration", "3"])
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
    assert "cannot follow counter,nope" in capsys.readouterr().err


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
        ["7147"],  # neither a request nor a command
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
@pytest.mark.parametrize("module", ["aiokatcp", "aiokatcp.tools.katcpcmd"])
async def test_console_script_end_to_end(module: str) -> None:
    """``python -m aiokatcp`` (and the tool's own module) against a server on 127.0.0.1."""
    server = CmdServer("127.0.0.1", 0)
    await server.start()
    try:
        port = server.sockets[0].getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", module, f"127.0.0.1:{port}", "echo", "x y"],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, stderr
        assert stdout.decode().splitlines() == ["#echo 'x y'", "!echo ok 'x y'"]
        proc = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", module, "--raw", f"127.0.0.1:{port}", "fail"],
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


# -- output formats ----------------------------------------------------------------------


async def test_human_output_unescapes(server: CmdServer) -> None:
    code, out = await run([address(server), "echo", "hello world", "-3", ""])
    assert code == katcpcmd.EXIT_OK
    assert out.splitlines() == [
        "#echo 'hello world'",
        "#echo -3",
        "#echo ''",
        "!echo ok 'hello world' -3 ''",
    ]


async def test_human_failure_and_log(server: CmdServer) -> None:
    code, out = await run([address(server), "fail"])
    assert (code, out) == (katcpcmd.EXIT_REPLY, "!fail fail as requested\n")
    code, out = await run([address(server), "shout"])
    assert out.splitlines() == [
        "2023-11-14 22:13:20.000Z warn cmd.device: hello there",
        "#something-else 1",
        "!shout ok",
    ]


async def test_help_table(server: CmdServer) -> None:
    code, out = await run([address(server), "help"])
    assert code == katcpcmd.EXIT_OK
    lines = out.splitlines()
    assert lines[0].split() == ["REQUEST", "DESCRIPTION"]
    column = lines[0].index("DESCRIPTION")
    echo = next(line for line in lines if line.startswith("echo "))
    assert echo[column:] == "Return the arguments."
    assert all(line[column - 2 : column] == "  " for line in lines[1:-1])
    assert lines[-1].startswith("!help ok ")


async def test_sensor_tables(server: CmdServer) -> None:
    server.sensors["temp"].set_value(21.5, timestamp=1700000000.0)
    code, out = await run([address(server), "sensor-list"])
    assert code == katcpcmd.EXIT_OK
    assert out.splitlines() == [
        "NAME     TYPE     UNITS  DESCRIPTION",
        "counter  integer         A counter",
        "temp     float    degC   A temperature",
        "!sensor-list ok 2",
    ]
    code, out = await run([address(server), "sensor-value", "temp"])
    assert out.splitlines() == [
        "NAME  STATUS   VALUE  TIMESTAMP",
        "temp  nominal  21.5   2023-11-14 22:13:20.000Z",
        "!sensor-value ok 1",
    ]


async def test_json_output(server: CmdServer) -> None:
    code, out = await run([address(server), "echo", "a b", "--json"])
    assert code == katcpcmd.EXIT_OK
    objs = [json.loads(line) for line in out.splitlines()]
    assert objs == [
        {"type": "inform", "name": "echo", "mid": objs[0]["mid"], "arguments": ["a b"]},
        {"type": "reply", "name": "echo", "mid": objs[0]["mid"], "arguments": ["ok", "a b"]},
    ]


async def test_field(server: CmdServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = await run([address(server), "echo", "a b", "c", "-p", "1"])
    assert (code, out) == (katcpcmd.EXIT_OK, "a b\n")
    code, out = await run([address(server), "--field", "0", "fail"])
    assert (code, out) == (katcpcmd.EXIT_REPLY, "fail\n")
    code, out = await run([address(server), "echo", "--field", "5"])
    assert (code, out) == (katcpcmd.EXIT_REPLY, "")
    assert "no field 5" in capsys.readouterr().err


class _Watched(io.StringIO):
    """An output stream that sets an event when a line containing `text` is written."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.seen = asyncio.Event()

    def write(self, s: str) -> int:
        if self.text in s:
            self.seen.set()
        return super().write(s)


async def test_informs_printed_as_they_arrive(server: CmdServer) -> None:
    out = _Watched("#calibrate started")
    task = asyncio.create_task(run([address(server), "calibrate"], out))
    await out.seen.wait()
    assert out.getvalue() == "#calibrate started\n"  # before the request has finished
    server.proceed.set()
    code, text = await task
    assert code == katcpcmd.EXIT_OK
    assert text.splitlines() == ["#calibrate started", "#calibrate finished", "!calibrate ok"]


# -- command line ------------------------------------------------------------------------


async def test_options_anywhere(server: CmdServer) -> None:
    code, out = await run(["--raw", address(server), "--timeout", "5", "echo", "x", "-3", "--raw"])
    assert code == katcpcmd.EXIT_OK
    assert out.splitlines()[-1] == "!echo[N] ok x -3"
    code, out = await run([address(server), "echo", "--", "--not-an-option"])
    assert out.splitlines()[-1] == "!echo ok --not-an-option"


async def test_katcp_server_environment(server: CmdServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KATCP_SERVER", address(server))
    code, out = await run(["echo", "x"])
    assert (code, out.splitlines()[-1]) == (katcpcmd.EXIT_OK, "!echo ok x")


async def test_no_address(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KATCP_SERVER", raising=False)
    with pytest.raises(SystemExit) as exc_info:
        await katcpcmd.amain(["echo"])
    assert exc_info.value.code == 2
    assert "KATCP_SERVER" in capsys.readouterr().err


async def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc_info:
        await katcpcmd.amain(["--version"])
    assert exc_info.value.code == 0
    assert capsys.readouterr().out == f"katcpcmd {aiokatcp.__version__}\n"
    with pytest.raises(SystemExit):
        await katcpcmd.amain(["--help"])
    help_text = capsys.readouterr().out
    assert "exit status:" in help_text
    for code in ("0 ", "1 ", "2 ", "3 ", "130 "):
        assert f"\n  {code}" in help_text


# -- several devices ---------------------------------------------------------------------


async def test_several_devices_one_down(
    server: CmdServer, capsys: pytest.CaptureFixture[str]
) -> None:
    other = CmdServer()
    await other.start()
    other_address = address(other)
    try:
        code, out = await run(
            [address(server), f"{other_address},127.0.0.1:1234", "echo", "hi", "--raw"]
        )
    finally:
        await other.stop()
    assert code == katcpcmd.EXIT_CONNECTION
    lines = sorted(out.splitlines())
    assert lines == sorted(
        f"{a}: {line}"
        for a in (address(server), other_address)
        for line in ("#echo[N] hi", "!echo[N] ok hi")
    )
    assert "127.0.0.1:1234: could not connect" in capsys.readouterr().err


async def test_several_devices_worst_status_wins(server: CmdServer) -> None:
    other = CmdServer()
    await other.start()
    try:
        code, out = await run([address(server), address(other), "sensor-value", "temp", "-p", "1"])
        assert code == katcpcmd.EXIT_OK
        assert sorted(out.splitlines()) == sorted(f"{address(s)}: 1" for s in (server, other))
        other.sensors.remove(other.sensors["temp"])
        code, _ = await run([address(server), address(other), "sensor-value", "temp"])
        assert code == katcpcmd.EXIT_REPLY
    finally:
        await other.stop()


# -- wait --------------------------------------------------------------------------------


async def test_wait_met(server: CmdServer) -> None:
    loop = asyncio.get_running_loop()

    async def change() -> None:
        await asyncio.sleep(1)
        server.sensors["counter"].set_value(2, timestamp=1700000000.0)
        await asyncio.sleep(1)
        server.sensors["counter"].set_value(3, timestamp=1700000001.0)

    task = asyncio.create_task(change())
    start = loop.time()
    code, out = await run(["wait", address(server), "counter", "3", "--timeout", "10"])
    await task
    assert code == katcpcmd.EXIT_OK
    assert loop.time() - start == pytest.approx(2, abs=0.1)
    assert out == "2023-11-14 22:13:21.000Z counter nominal 3\n"


async def test_wait_status_and_expr(server: CmdServer) -> None:
    code, _ = await run(["wait", address(server), "temp", "--status", "unknown", "--timeout", "1"])
    assert code == katcpcmd.EXIT_OK
    code, _ = await run(["wait", address(server), "temp", "--expr", ">20", "--timeout", "1"])
    assert code == katcpcmd.EXIT_OK
    code, _ = await run(["wait", address(server), "temp", "20.50", "--timeout", "1"])
    assert code == katcpcmd.EXIT_OK


async def test_wait_timed_out(server: CmdServer, capsys: pytest.CaptureFixture[str]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    code, out = await run(["wait", address(server), "temp", "--expr", "< 0", "--timeout", "5"])
    assert code == katcpcmd.EXIT_TIMEOUT
    assert loop.time() - start == pytest.approx(5, abs=0.1)
    assert out == ""
    assert "temp: not value < 0 within 5.0 s" in capsys.readouterr().err


async def test_wait_unknown_sensor(server: CmdServer) -> None:
    code, _ = await run(["wait", address(server), "nope", "1", "--timeout", "5"])
    assert code == katcpcmd.EXIT_REPLY


@pytest.mark.parametrize(
    "argv",
    [
        ["wait", "7147", "temp", "--timeout", "1"],  # no condition
        ["wait", "7147", "temp", "1"],  # no timeout
        ["wait", "7147", "temp", "--expr", "about 3", "--timeout", "1"],
        ["wait", "7147", "7148", "temp", "1", "--timeout", "1"],  # one address only
        ["log", "7147", "extra"],
        ["export", "7147"],  # no --port
        ["watch", "7147"],
        ["7147", "help", "--level", "loud"],
    ],
)
async def test_command_usage_errors(argv: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc_info:
        await katcpcmd.amain(argv)
    assert exc_info.value.code == 2
    assert "usage: katcpcmd" in capsys.readouterr().err


# -- log and watch -----------------------------------------------------------------------


async def test_log_level_filter(server: CmdServer) -> None:
    async def trigger() -> None:
        await asyncio.sleep(1)
        async with await aiokatcp.Client.connect(
            "127.0.0.1", server.sockets[0].getsockname()[1]
        ) as client:
            await client.request("logs")

    task = asyncio.create_task(trigger())
    code, out = await run(["log", address(server), "--level", "warn", "--duration", "3"])
    await task
    assert code == katcpcmd.EXIT_OK
    assert out.splitlines() == [
        "2023-11-14 22:13:20.000Z warn cmd.device: a warn message",
        "2023-11-14 22:13:20.000Z error cmd.device: a error message",
    ]


async def test_watch_plain_lines_when_not_a_terminal(server: CmdServer) -> None:
    async def change() -> None:
        await asyncio.sleep(1)
        server.sensors["counter"].set_value(5, timestamp=1700000000.0)

    task = asyncio.create_task(change())
    code, out = await run(["watch", address(server), "counter", "--duration", "2"])
    await task
    assert code == katcpcmd.EXIT_OK
    assert out.splitlines()[-1] == "2023-11-14 22:13:20.000Z counter nominal 5"


async def _restart(first: CmdServer, then: Callable[[CmdServer], None]) -> None:
    """On the virtual clock: stop `first` at 1 s, start a device on its port at 2 s,
    call `then` with it at 7 s, stop it at 12 s."""
    port = first.port
    await asyncio.sleep(1)
    await first.stop()
    await asyncio.sleep(1)
    second = CmdServer("127.0.0.1", port)
    await second.start()
    await asyncio.sleep(5)
    then(second)
    await asyncio.sleep(5)
    await second.stop()


async def test_watch_reconnects(capsys: pytest.CaptureFixture[str]) -> None:
    first = CmdServer()
    await first.start()
    port = first.port

    def change(second: CmdServer) -> None:
        second.sensors["counter"].set_value(7, timestamp=1700000000.0)

    task = asyncio.create_task(_restart(first, change))
    code, out = await run(
        ["watch", f"127.0.0.1:{port}", "counter", "--reconnect", "--duration", "20"]
    )
    await task
    assert code == katcpcmd.EXIT_OK
    assert out.splitlines()[-1] == "2023-11-14 22:13:20.000Z counter nominal 7"
    err = capsys.readouterr().err
    assert "reconnecting" in err and "reconnected" in err


# -- the console script: Ctrl-C and logging ----------------------------------------------


async def _spawn(*argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "aiokatcp", *argv],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.real_loop
@pytest.mark.parametrize(
    ("argv", "first_line", "expected_code"),
    [
        (["calibrate"], b"#calibrate started\n", katcpcmd.EXIT_INTERRUPTED),
        (["--watch", "counter"], None, katcpcmd.EXIT_OK),
    ],
)
async def test_ctrl_c(argv: List[str], first_line: Optional[bytes], expected_code: int) -> None:
    import signal

    server = CmdServer("127.0.0.1", 0)
    await server.start()
    try:
        proc = await _spawn(address(server), *argv)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)  # it is running
        if first_line is not None:
            assert line == first_line
        proc.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == expected_code
        assert b"katcpcmd: interrupted" in stderr
    finally:
        await server.stop()


@pytest.mark.real_loop
@pytest.mark.parametrize(
    ("flags", "shown"), [(["-v"], True), (["-vv"], True), (["-q"], False), (["-qqv"], False)]
)
async def test_verbose_and_quiet_logging(flags: List[str], shown: bool) -> None:
    """Log records go to stderr prefixed ``katcpcmd: LEVEL: logger:``; -v/-q move the level."""
    proc = await _spawn(*flags, "127.0.0.1:1", "watchdog")
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == katcpcmd.EXIT_CONNECTION
    assert b"katcpcmd: could not connect to 127.0.0.1:1" in stderr
    # (the client logs a failed attempt at INFO or WARNING: -v shows it, -q hides it)
    logged = re.search(
        rb"^katcpcmd: (INFO|WARNING): aiokatcp\.client: Failed to connect", stderr, re.M
    )
    assert (logged is not None) is shown


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_watch_live_table_on_a_terminal(
    server: CmdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)

    async def change() -> None:
        await asyncio.sleep(1)
        server.sensors["counter"].set_value(5, timestamp=1700000000.0)

    task = asyncio.create_task(change())
    out = _Terminal()
    code, text = await run(["watch", address(server), "counter", "temp", "--duration", "2"], out)
    await task
    assert code == katcpcmd.EXIT_OK
    frames = text.split("\x1b[H\x1b[J")[1:]  # each update redraws the whole table
    assert len(frames) == 3
    last = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in frames[-1].splitlines()]
    assert last[0].startswith("katcpcmd watch 127.0.0.1:")
    assert last[1].split() == ["NAME", "STATUS", "VALUE", "TIMESTAMP"]
    assert last[2].split()[:3] == ["counter", "nominal", "5"]
    assert last[3].split()[:3] == ["temp", "unknown", "20.5"]
    assert "\x1b[32mnominal\x1b[0m" in frames[-1]  # coloured on a terminal


async def test_no_colour_when_no_color_is_set(
    server: CmdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    code, text = await run([address(server), "watchdog"], _Terminal())
    assert (code, text) == (katcpcmd.EXIT_OK, "!watchdog ok\n")


async def test_log_reconnects(capsys: pytest.CaptureFixture[str]) -> None:
    first = CmdServer()
    await first.start()
    port = first.port

    def log(second: CmdServer) -> None:
        second.mass_inform("log", "warn", 1700000000.0, "cmd.device", "back again")

    task = asyncio.create_task(_restart(first, log))
    code, out = await run(["log", f"127.0.0.1:{port}", "--reconnect", "--duration", "20"])
    await task
    assert code == katcpcmd.EXIT_OK
    assert out.splitlines() == ["2023-11-14 22:13:20.000Z warn cmd.device: back again"]
    assert "reconnected" in capsys.readouterr().err


# -- TLS for every command ---------------------------------------------------------------


@pytest.mark.real_loop
async def test_tls_applies_to_wait_and_several_devices(capsys: pytest.CaptureFixture[str]) -> None:
    """The TLS options reach every connection the tool makes, not only a single request."""
    from aiokatcp.testing import running
    from security_helpers import SecDevice, TestPKI

    pki = TestPKI()
    async with running(SecDevice(ssl=pki.server_context())) as one:
        async with running(SecDevice(ssl=pki.server_context())) as two:
            code, out = await run(
                ["wait", f"127.0.0.1:{one.port}", "counter", "7", "--timeout", "30", "--insecure"]
            )
            assert code == katcpcmd.EXIT_OK
            code, out = await run(
                ["--insecure", f"127.0.0.1:{one.port},127.0.0.1:{two.port}", "whoami"]
            )
            assert code == katcpcmd.EXIT_OK
            assert set(out.splitlines()) == {
                f"127.0.0.1:{one.port}: !whoami ok tls anonymous",
                f"127.0.0.1:{two.port}: !whoami ok tls anonymous",
            }
    assert capsys.readouterr().err.count("NOT verified") == 2  # once per run
