"""``examples/v4_device.py`` runs: a v4 device and a client that sees seconds."""

from __future__ import annotations

import importlib.util
import pathlib
from typing import Any

PATH = pathlib.Path(__file__).parent.parent / "examples" / "v4_device.py"


def load() -> Any:
    spec = importlib.util.spec_from_file_location("v4_device_example", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_demo() -> None:
    seen = await load().demo()
    assert seen == [
        "protocol: 4.0, versions: ['build-state', 'version']",
        "last reset 0 s ago (in seconds)",
        "sampling: temperature period 0.5",
        "convert_seconds(0.5) = 500.0",
    ]
