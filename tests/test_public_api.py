"""The public surface stays compatible with aiokatcp 2.x (names, modules, signatures)."""

from __future__ import annotations

import importlib
import inspect

import pytest

import aiokatcp

# Names the package exported in aiokatcp 2.3 (api-contract §1).
TOP_LEVEL = {
    "__version__": None,
    "minor_version": None,
    "AbstractSensorWatcher": "client",
    "Client": "client",
    "ProtocolError": "client",
    "SensorWatcher": "client",
    "SyncState": "client",
    "Connection": "connection",
    "FailReply": "connection",
    "InvalidReply": "connection",
    "Address": "core",
    "DeviceStatus": "core",
    "KatcpSyntaxError": "core",
    "Message": "core",
    "Now": "core",
    "Timestamp": "core",
    "TimestampOrNow": "core",
    "TypeInfo": "core",
    "decode": "core",
    "encode": "core",
    "get_type": "core",
    "register_type": "core",
    "AggregateSensor": "sensor",
    "Reading": "sensor",
    "Sensor": "sensor",
    "SensorSampler": "sensor",
    "SensorSet": "sensor",
    "SimpleAggregateSensor": "sensor",
    "DeviceServer": "server",
    "RequestContext": "server",
    "ClockState": "time_sync",
    "TimeSyncUpdater": "time_sync",
}

# Semi-public names that 2.x documentation and user code reach for.
SEMI_PUBLIC = [
    ("core", "LogLevel"),
    ("core", "get_decoder"),
    ("connection", "DEFAULT_LIMIT"),
    ("connection", "wrap_handler"),
    ("connection", "ConnectionLoggerAdapter"),
    ("server", "ClientConnection"),
    ("server", "DeviceServerMeta"),
    ("client", "ClientMeta"),
    ("client", "ConnectAttempt"),
    ("tools.katcpcmd", "main"),
]


@pytest.mark.parametrize(("name", "module"), sorted(TOP_LEVEL.items()))
def test_top_level_name(name: str, module: str | None) -> None:
    obj = getattr(aiokatcp, name)
    assert name in aiokatcp.__all__
    if module is not None:
        # The same object is importable from its 2.x module path.
        assert getattr(importlib.import_module(f"aiokatcp.{module}"), name) is obj


@pytest.mark.parametrize(("module", "name"), SEMI_PUBLIC)
def test_semi_public_name(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(f"aiokatcp.{module}"), name)


@pytest.mark.parametrize(
    "module", ["adjtimex", "client", "connection", "core", "sensor", "server", "time_sync"]
)
def test_submodules_are_attributes(module: str) -> None:
    assert getattr(aiokatcp, module) is importlib.import_module(f"aiokatcp.{module}")


def test_all_is_exact() -> None:
    for name in aiokatcp.__all__:
        assert hasattr(aiokatcp, name), name


def test_minor_version() -> None:
    assert aiokatcp.minor_version() == ".".join(aiokatcp.__version__.split(".")[:2])
    assert aiokatcp.__version__.startswith("2.")


def test_log_handler_is_nested() -> None:
    assert issubclass(aiokatcp.DeviceServer.LogHandler, __import__("logging").Handler)


def _params(func: object) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(func).parameters.values()]  # type: ignore[arg-type]


def test_key_signatures() -> None:
    empty = inspect.Parameter.empty
    server_params = dict(_params(aiokatcp.DeviceServer.__init__))
    for name in ("host", "port", "limit", "max_pending", "max_backlog", "loop"):
        assert name in server_params
    assert server_params["max_pending"] == 100
    assert server_params["limit"] == 16 * 1024**2
    client_params = dict(_params(aiokatcp.Client.__init__))
    for name in ("host", "port", "auto_reconnect", "limit", "loop"):
        assert name in client_params
    assert client_params["auto_reconnect"] is True
    sensor_params = _params(aiokatcp.Sensor.__init__)
    assert [n for n, _ in sensor_params[:7]] == [
        "self",
        "sensor_type",
        "name",
        "description",
        "units",
        "default",
        "initial_status",
    ]
    assert dict(sensor_params)["description"] == ""
    message_params = _params(aiokatcp.Message.__init__)
    assert [n for n, _ in message_params] == ["self", "mtype", "name", "arguments", "mid"]
    assert dict(_params(aiokatcp.register_type))["default"] is None
    assert dict(_params(aiokatcp.Address.__init__))["port"] is None
    assert dict(_params(aiokatcp.Message.request))["mid"] is None
    assert _params(aiokatcp.Client.request_raw)[1] == ("name", empty)


def test_enum_values() -> None:
    assert [(s.name, s.value) for s in aiokatcp.Sensor.Status] == [
        ("UNKNOWN", 0),
        ("NOMINAL", 1),
        ("WARN", 2),
        ("ERROR", 3),
        ("FAILURE", 4),
        ("UNREACHABLE", 5),
        ("INACTIVE", 6),
    ]
    assert [(s.name, s.value) for s in aiokatcp.SensorSampler.Strategy] == [
        ("NONE", 0),
        ("AUTO", 1),
        ("PERIOD", 2),
        ("EVENT", 3),
        ("DIFFERENTIAL", 4),
        ("EVENT_RATE", 5),
        ("DIFFERENTIAL_RATE", 6),
    ]
    assert [(s.name, s.value) for s in aiokatcp.SyncState] == [
        ("DISCONNECTED", 1),
        ("SYNCING", 2),
        ("SYNCED", 3),
        ("CLOSED", 4),
    ]
    assert (aiokatcp.Message.OK, aiokatcp.Message.FAIL, aiokatcp.Message.INVALID) == (
        b"ok",
        b"fail",
        b"invalid",
    )


def test_exceptions() -> None:
    assert issubclass(aiokatcp.KatcpSyntaxError, ValueError)
    assert issubclass(aiokatcp.ProtocolError, ValueError)
    assert aiokatcp.ProtocolError("bad", "4.0").version == "4.0"
    assert aiokatcp.KatcpSyntaxError("bad", b"x").raw == b"x"
    for cls in (aiokatcp.FailReply, aiokatcp.InvalidReply, aiokatcp.KatcpSyntaxError):
        assert issubclass(cls, aiokatcp.exceptions.KatcpError)


def test_pure_layer_has_no_asyncio() -> None:
    import ast
    import pathlib

    src = pathlib.Path(aiokatcp.__file__).parent
    pure = ["core.py", "exceptions.py", "sensor.py", "adjtimex.py", "time_sync.py"]
    pure += [
        p.name for p in src.glob("_*.py") if not p.name.startswith(("_server_", "_client_", "__"))
    ]
    # (asyncio modules: the loop thread, the blocking client, the asyncio backports)
    pure = [
        name
        for name in pure
        if name not in ("_loop_thread.py", "_blocking_client.py", "_compat.py")
    ]
    for name in pure:
        tree = ast.parse((src / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "asyncio" for a in node.names), name
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "asyncio", name


# aiokatcp.testing (new in 2.4; imported on its own, not by ``import aiokatcp``).
TESTING = [
    "Expected",
    "PeerServer",
    "ScriptedPeer",
    "assert_request_fails",
    "client_for",
    "running",
    "virtual_clock_loop",
    "wait_for_sensor",
]
TESTING_FIXTURES = [
    "katcp_client",
    "katcp_device",
    "katcp_peer",
    "katcp_peer_server",
    "katcp_server",
]


def test_testing_toolkit_names() -> None:
    testing = importlib.import_module("aiokatcp.testing")
    assert sorted(testing.__all__) == TESTING
    for name in TESTING:
        obj = getattr(testing, name)
        if inspect.isclass(obj):
            assert obj.__module__ == "aiokatcp.testing"
    plugin = importlib.import_module("aiokatcp.testing.plugin")
    for name in TESTING_FIXTURES:
        assert name in plugin.__all__ and hasattr(plugin, name)
    assert [(n, d) for n, d in _params(testing.wait_for_sensor)] == [
        ("sensor", inspect.Parameter.empty),
        ("condition", inspect.Parameter.empty),
        ("timeout", 5.0),
    ]
    assert dict(_params(testing.assert_request_fails))["match"] is None


@pytest.mark.parametrize("name", ["BlockingClient", "LoopThread"])
def test_thread_helpers_are_public(name: str) -> None:
    obj = getattr(aiokatcp, name)
    assert name in aiokatcp.__all__
    assert obj.__module__ == "aiokatcp"
