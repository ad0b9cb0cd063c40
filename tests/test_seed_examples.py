"""The seed documents' examples, ported under examples/, run against live servers.

Synchronous tests: each server runs on a LoopThread (real loop, real
127.0.0.1 sockets), each client as the script would run it; output is
checked, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import importlib.util
import pathlib
import sys
import types
from typing import Any, Iterator

import pytest

import aiokatcp

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"
WAIT = 10.0


def load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"seed_examples.{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (dataclasses/enums look their module up)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def serve() -> Iterator[Any]:
    """``serve(server_class) -> (server, port)``: start it on 127.0.0.1, stopped afterwards."""
    with aiokatcp.LoopThread(name="seed-server") as lt:
        servers = []

        def start(cls: Any) -> Any:
            async def go() -> Any:
                server = cls("127.0.0.1", 0)
                await server.start()
                return server

            server = lt.run(go(), timeout=WAIT)
            servers.append(server)
            return server, server.port

        start.lt = lt  # type: ignore[attr-defined]
        yield start
        for server in servers:
            lt.run(server.stop(), timeout=WAIT)


@pytest.fixture(scope="module")
def seed_server() -> types.ModuleType:
    return load("seed_server")


def test_blocking_client(serve: Any, seed_server: types.ModuleType, capsys: Any) -> None:
    _, port = serve(seed_server.MyServer)
    load("seed_blocking_client").main("127.0.0.1", port)
    out = capsys.readouterr().out
    assert "protocol flags: ['B', 'I', 'M']" in out
    assert "\n#help[" in out and "pick-fruit Pick\\_a\\_random\\_fruit." in out
    assert "raw-reverse" in out


def test_callback_client(serve: Any, seed_server: types.ModuleType, capsys: Any) -> None:
    _, port = serve(seed_server.MyServer)
    load("seed_callback_client").main("127.0.0.1", port)
    lines = capsys.readouterr().out.splitlines()
    replies = [i for i, line in enumerate(lines) if line.startswith("Reply:")]
    informs = [i for i, line in enumerate(lines) if line.startswith("Inform:")]
    assert len(replies) == 1 and informs and max(informs) < replies[0]
    assert lines[replies[0]].startswith("Reply: !help[")
    assert f"ok {len(informs)}" in lines[replies[0]]


def test_custom_client(serve: Any, seed_server: types.ModuleType, capsys: Any) -> None:
    _, port = serve(seed_server.MyServer)
    asyncio.run(load("seed_custom_client").main("127.0.0.1", port))
    out = capsys.readouterr().out
    assert "--------- add ---------\n\nAdd two numbers\n" in out
    assert "help [b'ok', b'" in out  # reply_help
    assert "Unhandled reply watchdog" in out


def test_my_server_requests(serve: Any, seed_server: types.ModuleType) -> None:
    _, port = serve(seed_server.MyServer)
    with aiokatcp.BlockingClient("127.0.0.1", port, timeout=WAIT) as client:
        assert client.request("add", 2, 3.5)[0] == [b"5.5"]
        assert client.sensor_value("add.result") == 5.5
        assert float(client.request("time")[0][0]) > 1e9
        assert client.request("eval", "{'a': (1, 2)}")[0] == [b"{'a': (1, 2)}"]
        with pytest.raises(aiokatcp.FailReply, match="cannot evaluate"):
            client.request("eval", "__import__('os')")
        assert client.request("raw-reverse", "a", "b", "c")[0] == [b"c", b"b", b"a"]


def test_pick_fruit_answered_from_a_timer_thread(serve: Any, seed_server: types.ModuleType) -> None:
    class Quick(seed_server.MyServer):  # type: ignore[name-defined,misc]
        PICK_DELAY = (0.01, 0.02)
        choice: Any = seed_server.Fruit.KIWI

        def choose_fruit(self) -> Any:
            return self.choice

    server, port = serve(Quick)
    with aiokatcp.BlockingClient("127.0.0.1", port, timeout=WAIT) as client:
        reply, informs = client.request("pick-fruit")
        assert reply == [b"kiwi"]
        assert informs[0].arguments[0].startswith(b"Picking will take ")
        assert client.sensor_value("fruit.result", seed_server.Fruit) is seed_server.Fruit.KIWI
        server.choice = None
        with pytest.raises(aiokatcp.FailReply, match="No fruit"):
            client.request("pick-fruit")


def test_twisted_demo(serve: Any, capsys: Any) -> None:
    _, port = serve(load("seed_tx_server").DemoServer)
    client = load("seed_tx_client")
    asyncio.run(client.main(port))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Connected"
    assert "out of band" in out
    assert "[Message(Message.Type.INFORM, 'foo', b'fine'" in "\n".join(out)
    assert "[b'1']" in out
    assert any("b'int_sensor', b'unknown', b'3'" in line for line in out)
    client.main_futures(port)
    out = capsys.readouterr().out.splitlines()
    assert "[b'1']" in out
    assert any("b'int_sensor', b'unknown', b'3'" in line for line in out)


def test_aiokatcp_server_tutorial(serve: Any) -> None:
    server, port = serve(load("seed_server_tutorial").MyServer)
    with aiokatcp.BlockingClient("127.0.0.1", port, timeout=WAIT) as client:
        assert client.request("greet", "Ada")[0] == [b"hello", b"Ada"]
        assert client.request("counter")[0] == [b"1"]
        assert client.sensor_value("counter-queries") == 1
        reply, informs = client.request("list-names", "x", "y")
        assert reply == [b"2"] and [m.arguments for m in informs] == [[b"x"], [b"y"]]
        client.request("halt")
    serve.lt.run(server.join(), timeout=WAIT)
    assert server.stopped_cleanly
