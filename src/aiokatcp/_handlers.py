"""Handler introspection: from a typed ``request_*``/``inform_*`` function to a message decoder.

Pure: no asyncio. This module owns

* :func:`wrap_handler`, which reads a handler's signature once and returns a
  plain (synchronous) wrapper that decodes a message's arguments through the
  type registry and calls the handler; the wrapper returns whatever the
  handler returns (a coroutine for an ``async def`` handler), so awaiting is
  left to the asyncio layer;
* :func:`collect_handlers`, the shared handler-gathering logic used by the
  server's ``DeviceServerMeta`` (``request_*``, docstring required) and the
  client's ``ClientMeta`` (``inform_*``);
* :func:`request_timeout_hint`, the decorator behind ``?request-timeout-hint``.

Argument errors become :class:`~aiokatcp.exceptions.FailReply` naming the
argument and the reason, so a server turns them into ``fail`` replies.
"""

from __future__ import annotations

import inspect
import re
import typing
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

import decorator

from ._message import Message
from ._typeinfo import get_decoder
from .exceptions import FailReply

__all__ = [
    "collect_handlers",
    "get_request_timeout_hint",
    "request_timeout_hint",
    "wrap_handler",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_HINT_ATTR = "_aiokatcp_request_timeout_hint"


def _resolve_annotations(handler: Callable[..., Any]) -> Dict[str, Any]:
    """Return the handler's annotations as objects (string annotations evaluated)."""
    try:
        return typing.get_type_hints(handler)
    except Exception:
        # Some annotation (often the context's, imported only for type checking) cannot
        # be resolved; fall back to resolving the parameters one at a time.
        pass
    hints: Dict[str, Any] = {}
    globalns = getattr(inspect.unwrap(handler), "__globals__", {})
    for pname, ann in getattr(handler, "__annotations__", {}).items():
        if isinstance(ann, str):
            try:
                ann = eval(ann, globalns)
            except Exception:
                ann = _Unresolved(ann)
        hints[pname] = ann
    return hints


class _Unresolved:
    """Marker for an annotation that could not be evaluated."""

    def __init__(self, text: str) -> None:
        self.text = text


def wrap_handler(name: str, handler: Callable[..., Any], fixed: int) -> Callable[..., Any]:
    """Make a handler that takes ``(*fixed_args, msg)`` from a typed handler.

    The first `fixed` parameters of `handler` (e.g. ``self`` and ``ctx``) are
    passed through; the rest are decoded from the message's arguments using
    their annotations (no annotation means ``bytes``). Defaults, ``Optional``,
    unions and ``*args`` (whose annotation applies to each extra argument)
    are supported. The wrapper returns what `handler` returns, so it works
    for both ``def`` and ``async def`` handlers.

    Parameters
    ----------
    name
        Message name, used in error messages.
    handler
        The function to wrap.
    fixed
        Number of leading parameters that are not decoded from the message.

    Raises
    ------
    TypeError
        at wrap time, if an annotation names an unregistered type or a
        keyword-only parameter has no default
    ValueError
        at wrap time, if a parameter is named ``_msg`` or `handler` has fewer
        than `fixed` positional parameters

    Notes
    -----
    The wrapper raises :class:`~aiokatcp.exceptions.FailReply` for too many
    or too few arguments (``too many arguments for <name>``, ``missing a
    required argument: 'x'``) and for an argument its decoder rejects, with
    exactly the decoder's text, as aiokatcp 2.x does.
    """
    sig = inspect.signature(handler)
    params = list(sig.parameters.values())
    hints = _resolve_annotations(handler)
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if len(params) < fixed or any(p.kind not in positional for p in params[:fixed]):
        raise ValueError(f"handler for {name} must take at least {fixed} positional parameters")
    names: List[str] = []
    decoders: List[Callable[[bytes], Any]] = []
    required = 0
    var_decoder: Optional[Callable[[bytes], Any]] = None
    for param in params[fixed:]:
        if param.name == "_msg":
            raise ValueError(f"handler for {name}: a parameter may not be called _msg")
        if param.kind == inspect.Parameter.VAR_KEYWORD:
            continue
        if param.kind == inspect.Parameter.KEYWORD_ONLY:
            if param.default is inspect.Parameter.empty:
                raise TypeError(
                    f"handler for {name}: keyword-only parameter {param.name!r} needs a default"
                )
            continue
        ann = hints.get(param.name, bytes)
        if isinstance(ann, _Unresolved):
            raise TypeError(
                f"handler for {name}: cannot resolve annotation {ann.text!r} "
                f"of parameter {param.name!r}"
            )
        try:
            decoder = get_decoder(ann)
        except TypeError as exc:
            raise TypeError(f"handler for {name}: parameter {param.name!r}: {exc}") from None
        if param.kind == inspect.Parameter.VAR_POSITIONAL:
            var_decoder = decoder
        else:
            if param.default is inspect.Parameter.empty:
                required = len(names) + 1
            names.append(param.name)
            decoders.append(decoder)
    npos = len(names)
    plan: Tuple[Tuple[str, Callable[[bytes], Any]], ...] = tuple(zip(names, decoders))

    def decode_args(raw: List[bytes]) -> List[Any]:
        nargs = len(raw)
        if nargs < required:
            # (The texts of aiokatcp 2.x, which clients match on.)
            raise FailReply(f"missing a required argument: {names[nargs]!r}")
        if nargs > npos and var_decoder is None:
            raise FailReply(f"too many arguments for {name}")
        out: List[Any] = []
        append = out.append
        for (_, decoder), value in zip(plan, raw):
            try:
                append(decoder(value))
            except ValueError as exc:
                raise FailReply(str(exc)) from None
        if nargs > npos:
            assert var_decoder is not None
            for value in raw[npos:]:
                try:
                    append(var_decoder(value))
                except ValueError as exc:
                    raise FailReply(str(exc)) from None
        return out

    # The wrapper is generated with the real names of the fixed parameters plus
    # ``_msg`` (as in 2.x), so ``inspect.signature`` of a wrapped handler shows
    # what it is called with; decoding stays a single call (no extra layer).
    fixed_names = [p.name for p in params[:fixed]]
    arglist = ", ".join([*fixed_names, "_msg"])
    passed = "".join(f"{n}, " for n in fixed_names)
    body = (
        "if _no_required_ and not _msg.arguments:\n"
        f"    return _handler_({passed})\n"
        f"return _handler_({passed}*_decode_(_msg.arguments))"
    )
    wrapper: Callable[..., Any] = decorator.FunctionMaker.create(
        f"_wrapper({arglist})",
        body,
        {"_handler_": handler, "_decode_": decode_args, "_no_required_": required == 0},
        addsource=False,
    )
    wrapper.__annotations__ = {"_msg": Message}
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        try:
            setattr(wrapper, attr, getattr(handler, attr))
        except AttributeError:
            pass
    setattr(wrapper, "_aiokatcp_orig_handler", handler)  # noqa: B010
    return wrapper


def collect_handlers(
    cls: type, prefix: str, fixed: int, *, require_docstring: bool
) -> Dict[str, Callable[..., Any]]:
    """Gather and wrap every ``<prefix>xxx`` function of `cls` and its whole MRO.

    Plain mixin classes count too, so a handler defined on a base class
    without the metaclass is inherited. The message name is ``xxx`` with
    ``_`` replaced by ``-``. Setting ``<prefix>xxx = None`` in a subclass
    removes an inherited handler.

    Parameters
    ----------
    cls
        The class being created.
    prefix
        ``"request_"`` or ``"inform_"``.
    fixed
        Number of leading parameters not decoded from the message (see
        :func:`wrap_handler`).
    require_docstring
        Whether a handler without a docstring is an error (request handlers
        need one: it is their ``?help`` text).

    Raises
    ------
    TypeError
        if a handler lacks a required docstring, its name does not give a
        valid message name, or its signature cannot be decoded
    """
    handlers: Dict[str, Callable[..., Any]] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            if not attr.startswith(prefix):
                continue
            msg_name = attr[len(prefix) :].replace("_", "-")
            if value is None:
                handlers.pop(msg_name, None)
                continue
            if not inspect.isfunction(value):
                continue
            if not _NAME_RE.fullmatch(msg_name):
                raise TypeError(
                    f"{klass.__qualname__}.{attr}: {msg_name!r} is not a valid message name"
                )
            if require_docstring and not inspect.getdoc(value):
                raise TypeError(f"{klass.__qualname__}.{attr} must have a docstring")
            try:
                handlers[msg_name] = wrap_handler(msg_name, value, fixed)
            except ValueError as exc:
                raise TypeError(f"{klass.__qualname__}.{attr}: {exc}") from None
    return handlers


def request_timeout_hint(timeout_hint: float) -> Callable[[_F], _F]:
    """Decorate a request handler with a suggested client timeout (seconds).

    The server reports it through ``?request-timeout-hint`` (protocol flag
    ``T``), so clients can allow long-running requests more time.

    Raises
    ------
    ValueError
        if `timeout_hint` is negative
    """
    if timeout_hint < 0:
        raise ValueError("timeout_hint must be non-negative")

    def decorator(func: _F) -> _F:
        setattr(func, _HINT_ATTR, float(timeout_hint))
        return func

    return decorator


def get_request_timeout_hint(handler: Callable[..., Any]) -> Optional[float]:
    """The hint set by :func:`request_timeout_hint` on `handler` (wrapped or not), or ``None``."""
    orig = getattr(handler, "_aiokatcp_orig_handler", handler)
    hint = getattr(orig, _HINT_ATTR, None)
    return None if hint is None else float(hint)
