"""Dump the annotations (``typing.get_type_hints``) of the public API, normalised.

Run under both interpreters and diff, as for ``dump_surface.py``.
"""

import importlib
import inspect
import re
import typing

MODULES = [
    "aiokatcp.core",
    "aiokatcp.connection",
    "aiokatcp.server",
    "aiokatcp.client",
    "aiokatcp.sensor",
    "aiokatcp.time_sync",
]


def norm(text: str) -> str:
    text = re.sub(
        r"\b(typing|typing_extensions|collections\.abc|aiokatcp\.\w+|asyncio\.\w+|"
        r"_asyncio|ipaddress|socket|enum|builtins|abc)\.",
        "",
        text,
    )
    text = text.replace("<class '", "").replace("'>", "").replace("NoneType", "None")
    text = re.sub(r"Optional\[(.*)\]", r"Union[\1, None]", text)
    return text


def hints(obj):
    try:
        return {k: norm(str(v)) for k, v in typing.get_type_hints(obj).items()}
    except Exception as exc:
        return f"<{type(exc).__name__}>"


for modname in MODULES:
    mod = importlib.import_module(modname)
    for name in sorted(n for n in dir(mod) if not n.startswith("_")):
        obj = getattr(mod, name)
        if getattr(obj, "__module__", "").split(".")[0] != "aiokatcp":
            continue
        if inspect.isfunction(obj):
            print(f"{modname}.{name}", hints(obj))
        elif inspect.isclass(obj):
            for attr in sorted(a for a in dir(obj) if not a.startswith("_") or a == "__init__"):
                raw = inspect.getattr_static(obj, attr, None)
                if isinstance(raw, property):
                    print(f"{modname}.{name}.{attr}", "property", hints(raw.fget))
                elif isinstance(raw, (classmethod, staticmethod)):
                    print(f"{modname}.{name}.{attr}", hints(raw.__func__))
                elif inspect.isfunction(raw):
                    print(f"{modname}.{name}.{attr}", hints(raw))
