"""DeviceServer against a scripted peer: connect informs, standard requests, handler errors."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import AsyncIterator, List, Tuple

import pytest

from aiokatcp._version import __version__
from aiokatcp.core import LogLevel, Message
from aiokatcp.exceptions import FailReply, InvalidReply
from aiokatcp.server import DeviceServer, RequestContext, request_timeout_hint
from aiokatcp.testing import ScriptedPeer, running

MINOR = ".".join(__version__.split(".")[:2])


class DemoServer(DeviceServer):
    VERSION = "demo-api-1.0"
    BUILD_STATE = "demo-1.0.3"

    async def request_add(self, ctx: RequestContext, x: int, y: int = 1) -> int:
        """Add two integers.

        Parameters
        ----------
        x, y
            The numbers.
        """
        return x + y

    def request_echo(self, ctx: RequestContext, *args: str) -> Tuple[str, ...]:
        """Return the arguments (a plain ``def`` handler)."""
        return args

    async def request_fail(self, ctx: RequestContext) -> None:
        """Always fail."""
        raise FailReply("no good")

    async def request_invalid(self, ctx: RequestContext) -> None:
        """Always invalid."""
        raise InvalidReply("bad form")

    async def request_crash(self, ctx: RequestContext) -> None:
        """Divide by zero."""
        1 / 0  # noqa: B018

    async def request_deep(self, ctx: RequestContext, n: int) -> None:
        """Fail n calls deep."""

        def dive(k: int) -> None:
            if k == 0:
                raise ValueError("bottom")
            dive(k - 1)

        dive(n)

    async def request_multi(self, ctx: RequestContext) -> Tuple[str, float, bool, LogLevel]:
        """Return several values after an inform and a suspension."""
        ctx.inform("working")
        await asyncio.sleep(1)
        return "done", 1.5, True, LogLevel.INFO

    async def request_list(self, ctx: RequestContext, n: int) -> None:
        """Send n informs with ctx.informs."""
        ctx.informs((i, f"item {i}") for i in range(n))

    async def request_reply_self(self, ctx: RequestContext) -> None:
        """Reply through the context."""
        ctx.reply("ok", "by-hand")

    async def request_reply_twice(self, ctx: RequestContext) -> None:
        """Reply twice (an error)."""
        ctx.reply("ok")
        ctx.reply("ok")

    async def request_reply_then_raise(self, ctx: RequestContext) -> None:
        """Reply, then fail."""
        ctx.reply("ok")
        await asyncio.sleep(0)
        raise FailReply("too late")

    async def request_reply_and_return(self, ctx: RequestContext) -> int:
        """Reply and also return a value (an error)."""
        ctx.reply("ok")
        return 3

    async def request_inform_after_reply(self, ctx: RequestContext) -> None:
        """Inform after the reply (an error)."""
        ctx.reply("ok")
        ctx.inform("late")

    @request_timeout_hint(30)
    async def request_capture_start(self, ctx: RequestContext) -> None:
        """Start a capture (slow)."""

    @request_timeout_hint(600.5)
    async def request_flash_firmware(self, ctx: RequestContext) -> None:
        """Flash the firmware (very slow)."""

    async def request_bad_return(self, ctx: RequestContext) -> object:
        """Return something that cannot be encoded."""
        return object()


@pytest.fixture
async def server() -> AsyncIterator[DemoServer]:
    async with running(DemoServer("127.0.0.1", 0)) as srv:
        yield srv


@pytest.fixture
async def peer(server: DemoServer) -> AsyncIterator[ScriptedPeer]:
    async with await ScriptedPeer.connect_to(server) as peer:
        await peer.expect_connect()
        yield peer


class Versioned(DemoServer):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.extra_versions["firmware"] = ("fw-2.0", "abc123")


@pytest.fixture
async def versioned() -> AsyncIterator[Versioned]:
    async with running(Versioned("127.0.0.1", 0)) as srv:
        yield srv


async def test_version_connect(versioned: Versioned) -> None:
    async with await ScriptedPeer.connect_to(versioned) as peer:
        await peer.expect(
            b"#version-connect katcp-protocol 5.1-MIBT",
            f"#version-connect katcp-library aiokatcp-{MINOR} aiokatcp-{__version__}".encode(),
            b"#version-connect katcp-device demo-api-1.0 demo-1.0.3",
            b"#version-connect firmware fw-2.0 abc123",
        )


async def test_version_list(versioned: Versioned) -> None:
    peer = await ScriptedPeer.connect_to(versioned)
    await peer.readlines(4)
    assert await peer.request(b"?version-list[2]") == [
        b"#version-list[2] katcp-protocol 5.1-MIBT",
        f"#version-list[2] katcp-library aiokatcp-{MINOR} aiokatcp-{__version__}".encode(),
        b"#version-list[2] katcp-device demo-api-1.0 demo-1.0.3",
        b"#version-list[2] firmware fw-2.0 abc123",
        b"!version-list[2] ok 4",
    ]
    await peer.close()


async def test_client_connected_sent_to_others(server: DemoServer, peer: ScriptedPeer) -> None:
    async with await ScriptedPeer.connect_to(server) as second:
        await second.expect_connect()
        (line,) = await peer.expect(re.compile(rb"#client-connected \S+:\d+"))
        addr = line.split(b" ")[1]
        lines = await peer.request(b"?client-list")
        assert lines[-1] == b"!client-list ok 2"
        assert b"#client-list " + addr in lines
        # the new client does not hear about itself: its next line is the reply
        assert await second.request(b"?watchdog") == [b"!watchdog ok"]


async def test_client_list(server: DemoServer, peer: ScriptedPeer) -> None:
    lines = await peer.request(b"?client-list[5]")
    assert len(lines) == 2
    assert re.fullmatch(rb"#client-list\[5\] \S+:\d+", lines[0])
    assert lines[1] == b"!client-list[5] ok 1"


async def test_watchdog(peer: ScriptedPeer) -> None:
    assert await peer.request(b"?watchdog") == [b"!watchdog ok"]
    assert await peer.request(b"?watchdog[9]") == [b"!watchdog[9] ok"]


async def test_help_all(server: DemoServer, peer: ScriptedPeer) -> None:
    lines = await peer.request(b"?help")
    names = [line.split(b" ")[1] for line in lines[:-1]]
    assert names == sorted(names)
    assert len(names) == len(server._request_handlers)
    for expected in [b"halt", b"help", b"watchdog", b"version-list", b"log-level"]:
        assert expected in names
    assert b"restart" not in names  # DemoServer does not override restart()
    assert b"#help add Add\\_two\\_integers." in lines
    assert b"#help echo Return\\_the\\_arguments\\_(a\\_plain\\_``def``\\_handler)." in lines
    assert lines[-1] == f"!help ok {len(names)}".encode()


async def test_help_one(peer: ScriptedPeer) -> None:
    assert await peer.request(b"?help[1] add") == [
        b"#help[1] add Add\\_two\\_integers.\\n\\nParameters\\n----------\\nx,\\_y\\n"
        b"\\_\\_\\_\\_The\\_numbers.",
        b"!help[1] ok 1",
    ]


async def test_help_unknown(peer: ScriptedPeer) -> None:
    assert await peer.request(b"?help nosuch") == [
        b"!help fail request\\_nosuch\\_is\\_not\\_known"
    ]


async def test_log_level(server: DemoServer, peer: ScriptedPeer) -> None:
    assert await peer.request(b"?log-level") == [b"!log-level ok warn"]
    for level in [b"off", b"fatal", b"error", b"warn", b"info", b"debug", b"trace", b"all"]:
        assert await peer.request(b"?log-level " + level) == [b"!log-level ok " + level]
    assert server.log_level == LogLevel.ALL
    lines = await peer.request(b"?log-level loud")
    assert lines == [b"!log-level fail b'loud'\\_is\\_not\\_a\\_valid\\_value\\_for\\_LogLevel"]


async def test_restart_absent_unless_implemented(peer: ScriptedPeer) -> None:
    assert await peer.request(b"?restart") == [b"!restart invalid unknown\\_request\\_restart"]


async def test_restart_hook() -> None:
    class Restartable(DemoServer):
        restarted = 0

        async def restart(self) -> None:
            await asyncio.sleep(1)
            self.restarted += 1

    async with running(Restartable("127.0.0.1", 0)) as srv:
        async with await ScriptedPeer.connect_to(srv) as peer:
            await peer.expect_connect()
            assert await peer.request(b"?restart") == [b"!restart ok"]
        assert srv.restarted == 1


async def test_request_timeout_hint(peer: ScriptedPeer) -> None:
    assert await peer.request(b"?request-timeout-hint") == [
        b"#request-timeout-hint capture-start 30.0",
        b"#request-timeout-hint flash-firmware 600.5",
        b"!request-timeout-hint ok 2",
    ]
    assert await peer.request(b"?request-timeout-hint[3] capture-start") == [
        b"#request-timeout-hint[3] capture-start 30.0",
        b"!request-timeout-hint[3] ok 1",
    ]
    assert await peer.request(b"?request-timeout-hint add") == [
        b"#request-timeout-hint add 0.0",
        b"!request-timeout-hint ok 1",
    ]
    assert await peer.request(b"?request-timeout-hint nosuch") == [
        b"!request-timeout-hint fail request\\_nosuch\\_is\\_not\\_known"
    ]


@pytest.mark.parametrize(
    ("request_line", "expected"),
    [
        (b"?add 2", [b"!add ok 3"]),
        (b"?add[7] 2 3", [b"!add[7] ok 5"]),
        # the texts of aiokatcp 2.3 (contract §10.2)
        (b"?add x", [b"!add fail invalid\\_literal\\_for\\_int()\\_with\\_base\\_10:\\_b'x'"]),
        (b"?add 1 2 3", [b"!add fail too\\_many\\_arguments\\_for\\_add"]),
        (b"?add", [b"!add fail missing\\_a\\_required\\_argument:\\_'x'"]),
        (b"?echo a \\_b \\@", [b"!echo ok a \\_b \\@"]),
        (b"?echo", [b"!echo ok"]),
        (b"?fail", [b"!fail fail no\\_good"]),
        (b"?invalid[4]", [b"!invalid[4] invalid bad\\_form"]),
        (b"?nosuch", [b"!nosuch invalid unknown\\_request\\_nosuch"]),
        (b"?multi[2]", [b"#multi[2] working", b"!multi[2] ok done 1.5 1 info"]),
        (b"?list 2", [b"#list 0 item\\_0", b"#list 1 item\\_1", b"!list ok 2"]),
        (b"?list 0", [b"!list ok 0"]),
        (b"?reply-self", [b"!reply-self ok by-hand"]),
    ],
)
async def test_request_wire(peer: ScriptedPeer, request_line: bytes, expected: List[bytes]) -> None:
    assert await peer.request(request_line) == expected


@pytest.mark.parametrize(
    ("name", "error"),
    [
        (b"crash", b"ZeroDivisionError:\\_division\\_by\\_zero\\n"),
        (b"bad-return", b"TypeError:\\_<class\\_'object'>\\_is\\_not\\_registered"),
    ],
)
async def test_uncaught_exception_fails_with_traceback(
    peer: ScriptedPeer, name: bytes, error: bytes
) -> None:
    [reply] = await peer.request(b"?" + name)
    assert reply.startswith(b"!" + name + b" fail Traceback\\_(most\\_recent\\_call\\_last):\\n")
    assert error in reply


async def test_traceback_is_bounded(server: DemoServer, peer: ScriptedPeer) -> None:
    [long] = await peer.request(b"?deep 200")
    assert long.endswith(b"ValueError:\\_bottom\\n")
    repeated = re.search(rb"repeated\\_(\d+)\\_more", long)
    assert repeated is not None and int(repeated.group(1)) < DemoServer.tb_limit


async def test_uncaught_exception_logged(
    peer: ScriptedPeer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "aiokatcp.server"):
        await peer.request(b"?crash")
    assert "ZeroDivisionError" in caplog.text
    assert "Traceback" in caplog.text


@pytest.mark.parametrize(
    ("name", "error"),
    [
        (
            b"reply-twice",
            b"RuntimeError:\\_request\\_?reply-twice\\_has\\_already\\_been\\_replied\\_to",
        ),
        (b"reply-then-raise", b"too\\_late"),
        (b"reply-and-return", b"replied\\_and\\_returned\\_a\\_value"),
        (b"inform-after-reply", b"already\\_been\\_replied\\_to"),
    ],
)
async def test_error_after_reply_becomes_log(peer: ScriptedPeer, name: bytes, error: bytes) -> None:
    await peer.send(b"?" + name)
    reply, log = await peer.readlines(2)
    assert reply == b"!" + name + b" ok"
    assert re.fullmatch(
        rb"#log error \d+\.\d+ aiokatcp.server "
        rb"(Traceback\\_\(most\\_recent\\_call\\_last\)|RuntimeError).*",
        log,
    )
    assert error in log
    # exactly one reply: the next request is answered normally
    assert await peer.request(b"?watchdog") == [b"!watchdog ok"]


async def test_malformed_line_keeps_connection(peer: ScriptedPeer) -> None:
    await peer.send(b"?bad a\\q")
    await peer.expect(
        re.compile(rb"#log error \S+ aiokatcp.connection malformed\\_message:\\_invalid\\_escape.*")
    )
    assert await peer.request(b"?watchdog") == [b"!watchdog ok"]


async def test_replies_and_informs_from_client_ignored(peer: ScriptedPeer) -> None:
    await peer.send(b"!watchdog ok", b"#hello")
    assert await peer.request(b"?watchdog") == [b"!watchdog ok"]


async def test_unhandled_request_override() -> None:
    class Dynamic(DemoServer):
        async def unhandled_request(self, ctx: RequestContext, req: Message) -> None:
            if req.name.startswith("dyn-"):
                ctx.reply("ok", req.name, *req.arguments)
            else:
                await super().unhandled_request(ctx, req)

    async with running(Dynamic("127.0.0.1", 0)) as srv, await ScriptedPeer.connect_to(srv) as peer:
        await peer.expect_connect()
        assert await peer.request(b"?dyn-x 1") == [b"!dyn-x ok dyn-x 1"]
        assert await peer.request(b"?other") == [b"!other invalid unknown\\_request\\_other"]


def test_version_and_build_state_required() -> None:
    class NoVersion(DeviceServer):
        BUILD_STATE = "x"

    with pytest.raises(TypeError, match="VERSION"):
        NoVersion("127.0.0.1", 0)


def test_docstring_required() -> None:
    with pytest.raises(TypeError, match="docstring"):

        class NoDoc(DeviceServer):
            VERSION = "a"
            BUILD_STATE = "b"

            async def request_x(self, ctx: RequestContext) -> None:
                pass


def test_constructible_without_running_loop() -> None:
    srv = DemoServer("127.0.0.1", 0)
    assert srv.sockets == ()
    assert srv.server is None
    assert srv.max_backlog == 2 * srv.limit


def test_sensor_requests_inherited_from_mixin() -> None:
    for name in ["sensor-list", "sensor-value", "sensor-sampling"]:
        assert name in DemoServer._request_handlers


async def test_mass_inform(server: DemoServer, peer: ScriptedPeer) -> None:
    async with await ScriptedPeer.connect_to(server) as second:
        await second.expect_connect()
        await peer.expect(re.compile(rb"#client-connected .*"))
        server.mass_inform("interface-changed", "sensor-list")
        await peer.expect(b"#interface-changed sensor-list")
        await second.expect(b"#interface-changed sensor-list")


async def test_start_twice_fails(server: DemoServer) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        await server.start()


class LogServer(DemoServer):
    async def request_log(self, ctx: RequestContext, level: int, text: str) -> None:
        """Log a message through a user logger."""
        logging.getLogger("demo.device").log(level, "%s", text)


@pytest.fixture
async def log_server() -> AsyncIterator[Tuple[LogServer, ScriptedPeer]]:
    srv = LogServer("127.0.0.1", 0)
    handler = srv.LogHandler(srv)
    logging.getLogger().addHandler(handler)
    user_logger = logging.getLogger("demo.device")
    old_level = user_logger.level
    user_logger.setLevel(1)
    try:
        async with running(srv), await ScriptedPeer.connect_to(srv) as peer:
            await peer.expect_connect()
            yield srv, peer
    finally:
        logging.getLogger().removeHandler(handler)
        user_logger.setLevel(old_level)


async def test_log_handler_forwards(log_server: Tuple[LogServer, ScriptedPeer]) -> None:
    _, peer = log_server
    await peer.send(b"?log 40 oops")
    await peer.expect(
        re.compile(rb"#log error \d+\.\d+ demo.device test_server.py:\d+:\\_oops"), b"!log ok"
    )


async def test_log_handler_honours_level(log_server: Tuple[LogServer, ScriptedPeer]) -> None:
    _, peer = log_server
    # default level warn: info is not sent
    assert await peer.request(b"?log 20 quiet") == [b"!log ok"]
    assert await peer.request(b"?log-level trace") == [b"!log-level ok trace"]
    cases = [(5, b"trace"), (7, b"trace"), (15, b"debug"), (25, b"info"), (35, b"warn")]
    cases += [(45, b"error"), (50, b"fatal"), (70, b"fatal")]
    for py_level, katcp in cases:
        await peer.send(b"?log %d m" % py_level)
        await peer.expect(re.compile(rb"#log " + katcp + rb" \S+ demo.device \S+:\\_m"), b"!log ok")
    assert await peer.request(b"?log-level off") == [b"!log-level ok off"]
    assert await peer.request(b"?log 50 silent") == [b"!log ok"]


async def test_log_handler_skips_aiokatcp_loggers(
    log_server: Tuple[LogServer, ScriptedPeer],
) -> None:
    _, peer = log_server
    assert await peer.request(b"?log-level all") == [b"!log-level ok all"]
    logging.getLogger("aiokatcp.server").error("internal")
    logging.getLogger("aiokatcp").error("internal")
    assert await peer.request(b"?watchdog") == [b"!watchdog ok"]


@pytest.mark.real_loop
async def test_log_handler_from_another_thread() -> None:
    srv = LogServer("127.0.0.1", 0)
    handler = srv.LogHandler(srv)
    thread_logger = logging.getLogger("demo.thread")
    thread_logger.addHandler(handler)
    try:
        async with running(srv), await ScriptedPeer.connect_to(srv, timeout=30) as peer:
            await peer.expect_connect()
            await asyncio.to_thread(thread_logger.error, "from a thread")
            await peer.expect(
                re.compile(rb"#log error \S+ demo.thread \S+:\d+:\\_from\\_a\\_thread")
            )
    finally:
        thread_logger.removeHandler(handler)


async def test_service_task_failure_stops_server() -> None:
    srv = DemoServer("127.0.0.1", 0)
    await srv.start()

    async def fails() -> None:
        await asyncio.sleep(1)
        raise RuntimeError("service broke")

    async def forever() -> None:
        await asyncio.Event().wait()

    async def finishes() -> None:
        pass

    bad = asyncio.create_task(fails())
    good = asyncio.create_task(forever())
    quick = asyncio.create_task(finishes())
    for task in [bad, good, quick]:
        srv.add_service_task(task)
    await asyncio.sleep(0.5)
    assert quick.done()
    assert set(srv.service_tasks) == {bad, good}
    with pytest.raises(RuntimeError, match="service broke"):
        await srv.join()
    assert good.cancelled()
    assert srv.service_tasks == ()
    with pytest.raises(RuntimeError, match="service broke"):
        await srv.stop()


async def test_on_stop_exception_reraised() -> None:
    class BadStop(DemoServer):
        async def on_stop(self) -> None:
            raise ValueError("cleanup failed")

    srv = BadStop("127.0.0.1", 0)
    await srv.start()
    with pytest.raises(ValueError, match="cleanup failed"):
        await srv.stop()


async def test_halt_request(server: DemoServer, peer: ScriptedPeer) -> None:
    await peer.send(b"?halt[5]")
    await peer.expect(b"!halt[5] ok", b"#disconnect server\\_shutting\\_down")
    await peer.expect_eof()
    await server.join()


async def test_optional_loop_argument(server: DemoServer) -> None:
    srv = DemoServer("127.0.0.1", 0, loop=asyncio.get_running_loop())
    assert srv.loop is asyncio.get_running_loop()
    assert server.loop is asyncio.get_running_loop()
