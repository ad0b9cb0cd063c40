"""Dump the public API surface of the importable ``aiokatcp`` as JSON lines.

Run it under two interpreters (our venv and aiokatcp 2.3.0's) and diff the
outputs: every name or parameter of 2.3 that is missing or different here is
a compatibility defect unless the contract says otherwise.

Usage: python dump_surface.py > surface.txt
"""

from __future__ import annotations

import enum
import importlib
import inspect
import sys
from typing import Any, List

MODULES = [
    "aiokatcp",
    "aiokatcp.core",
    "aiokatcp.connection",
    "aiokatcp.server",
    "aiokatcp.client",
    "aiokatcp.sensor",
    "aiokatcp.time_sync",
    "aiokatcp.adjtimex",
    "aiokatcp.tools.katcpcmd",
]


def sig(obj: Any) -> str:
    try:
        s = inspect.signature(obj)
    except (TypeError, ValueError):
        return "<no signature>"
    parts = []
    for p in s.parameters.values():
        text = f"{p.name}:{p.kind.name}"
        if p.default is not inspect.Parameter.empty:
            text += f"={p.default!r}"
        parts.append(text)
    return "(" + ", ".join(parts) + ")"


def kind(obj: Any) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        if issubclass(obj, enum.Enum):
            return "enum"
        if issubclass(obj, BaseException):
            return "exception"
        return "class"
    if inspect.iscoroutinefunction(obj):
        return "coroutine-function"
    if callable(obj):
        return "function"
    return "value:" + type(obj).__name__


def member_kind(cls: type, name: str) -> str:
    raw = inspect.getattr_static(cls, name)
    if isinstance(raw, property):
        return "property" + ("" if raw.fset is None else "(settable)")
    if isinstance(raw, classmethod):
        return "classmethod"
    if isinstance(raw, staticmethod):
        return "staticmethod"
    val = getattr(cls, name)
    if inspect.isclass(val):
        return "nested-class"
    if inspect.iscoroutinefunction(val):
        return "async-method"
    if callable(val):
        return "method"
    return "attr:" + type(val).__name__


def public(names: List[str]) -> List[str]:
    return sorted(n for n in names if not n.startswith("_"))


def dump_class(prefix: str, cls: type, out: List[str]) -> None:
    out.append(f"{prefix} ctor{sig(cls)}")
    out.append(f"{prefix} bases={[b.__name__ for b in cls.__mro__[1:]]}")
    if issubclass(cls, enum.Enum):
        out.append(f"{prefix} members={[(m.name, m.value) for m in cls.__members__.values()]}")
        return
    for name in public(dir(cls)):
        # skip what every object has
        if any(name in vars(b) for b in (object, BaseException, type)):
            if not any(name in vars(c) for c in cls.__mro__ if c not in (object, BaseException)):
                continue
        try:
            mk = member_kind(cls, name)
        except AttributeError:
            continue
        val = getattr(cls, name, None)
        text = f"{prefix}.{name} {mk}"
        if mk in ("method", "async-method", "classmethod", "staticmethod"):
            text += sig(val)
        elif mk.startswith("property"):
            raw = inspect.getattr_static(cls, name)
            try:
                ret = inspect.signature(raw.fget).return_annotation
                text += f" -> {ret}"
            except (TypeError, ValueError):
                pass
        elif mk == "nested-class":
            text += " " + sig(val)
        out.append(text)
    for name in ("__aenter__", "__aexit__", "__enter__", "__exit__", "__iter__", "__bytes__"):
        if name in dir(cls) and not hasattr(object, name):
            out.append(f"{prefix}.{name} {sig(getattr(cls, name))}")


def main() -> None:
    out: List[str] = []
    for modname in MODULES:
        try:
            mod = importlib.import_module(modname)
        except ImportError as exc:
            out.append(f"{modname} IMPORT-ERROR {exc}")
            continue
        names = getattr(mod, "__all__", None)
        out.append(f"{modname} __all__={'yes' if names is not None else 'no'}")
        names = public(dir(mod))
        for name in names:
            obj = getattr(mod, name)
            if inspect.ismodule(obj) and modname != "aiokatcp":
                continue  # stdlib modules imported by the module
            if not inspect.ismodule(obj) and not callable(obj) and not isinstance(obj, (int, str)):
                k = kind(obj)
                # typing aliases and friends
                out.append(f"{modname}.{name} {k} {obj!r}"[:200])
                continue
            mod_of = getattr(obj, "__module__", None)
            if (
                modname != "aiokatcp"
                and mod_of
                and not mod_of.startswith("aiokatcp")
                and (inspect.isclass(obj) or inspect.isfunction(obj))
            ):
                continue  # re-exported stdlib/typing helper
            k = kind(obj)
            line = f"{modname}.{name} {k}"
            if k.startswith("value:"):
                line += f" {obj!r}"[:120]
            elif k in ("function", "coroutine-function"):
                line += sig(obj)
            if inspect.isclass(obj):
                line += f" __module__={obj.__module__}"
            out.append(line)
            if inspect.isclass(obj) and modname != "aiokatcp":
                dump_class(f"{modname}.{name}", obj, out)
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
