"""Names and signatures of aiokatcp 2.3 found missing by the surface audit.

The audit script is ``tests/data/compat/dump_surface.py`` (run it under both
interpreters and diff); each test here pins one name or signature it found.
"""

from __future__ import annotations

import enum
import inspect
import logging
import typing
from typing import Any

import aiokatcp
from aiokatcp import client, sensor, server


def test_observer_protocols() -> None:
    assert sensor.ClassicObserver.__module__ == "aiokatcp.sensor"
    assert sensor.DeltaObserver.__module__ == "aiokatcp.sensor"
    params = inspect.signature(sensor.DeltaObserver.__call__).parameters
    assert params["old_reading"].kind is inspect.Parameter.KEYWORD_ONLY
    origins = {typing.get_origin(arg) for arg in typing.get_args(sensor.Observer)}
    assert origins == {sensor.ClassicObserver, sensor.DeltaObserver}
    for name in ("ClassicObserver", "DeltaObserver", "Observer"):
        assert name in sensor.__all__


def test_observer_annotation_accepts_plain_function() -> None:
    seen = []

    def obs(s: aiokatcp.Sensor[int], r: aiokatcp.Reading[int]) -> None:
        seen.append(r.value)

    typed: sensor.ClassicObserver[int] = obs
    s = aiokatcp.Sensor(int, "x")
    s.attach(typed)
    s.value = 3
    assert seen == [3]


def test_metaclass_passes_class_keywords_to_init_subclass() -> None:
    class Base(aiokatcp.DeviceServer):
        flavour = "plain"

        def __init_subclass__(cls, flavour: str = "plain", **kwargs: Any) -> None:
            super().__init_subclass__(**kwargs)
            cls.flavour = flavour

    class Device(Base, flavour="spicy"):
        VERSION = "v-1.0"
        BUILD_STATE = "b-1.0"

    assert Device.flavour == "spicy"

    class ClientBase(aiokatcp.Client):
        flavour = "plain"

        def __init_subclass__(cls, flavour: str = "plain", **kwargs: Any) -> None:
            super().__init_subclass__(**kwargs)
            cls.flavour = flavour

    class MyClient(ClientBase, flavour="sour"):
        pass

    assert MyClient.flavour == "sour"


def test_version_attributes_exist_on_base() -> None:
    assert aiokatcp.DeviceServer.VERSION is None
    assert aiokatcp.DeviceServer.BUILD_STATE is None


def test_server_module_logger() -> None:
    assert server.logger is logging.getLogger("aiokatcp.server")


def test_client_aexit_signature() -> None:
    params = list(inspect.signature(aiokatcp.Client.__aexit__).parameters)
    assert params == ["self", "exc_type", "exc", "tb"]


def test_discrete_enum_values_are_wire_values() -> None:
    # 2.x: a mirrored discrete sensor's enum has the wire bytes as member values.
    made = client._discrete_enum((b"a-b", b"c"))
    assert issubclass(made, client.DiscreteMixin)
    assert issubclass(made, enum.Enum)
    assert [m.value for m in made] == [b"a-b", b"c"]
    assert [m.name for m in made] == ["ENUM0", "ENUM1"]
    assert [aiokatcp.encode(m) for m in made] == [b"a-b", b"c"]
    assert aiokatcp.decode(made, b"c") is made.ENUM1  # type: ignore[attr-defined]
    assert made.__module__ == "aiokatcp.client"
    assert client.DiscreteMixin.__module__ == "aiokatcp.client"


def test_reading_is_a_dataclass_as_in_2x() -> None:
    """2.x's ``Reading`` is a (non-frozen, slotted, unhashable) dataclass."""
    import dataclasses

    from aiokatcp import Reading, Sensor

    reading = Reading(1.5, Sensor.Status.WARN, 3)
    assert dataclasses.is_dataclass(reading)
    assert [field.name for field in dataclasses.fields(reading)] == ["timestamp", "status", "value"]
    assert dataclasses.replace(reading, value=4) == Reading(1.5, Sensor.Status.WARN, 4)
    assert repr(reading) == "Reading(timestamp=1.5, status=<Status.WARN: 2>, value=3)"
    assert Reading.__hash__ is None
    assert not hasattr(reading, "__dict__")
