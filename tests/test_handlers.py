"""Tests for aiokatcp._handlers: signature -> decoders, and handler collection (pure, sync)."""

from __future__ import annotations

import enum
from typing import Any, List, Optional, Union

import pytest

from aiokatcp._handlers import (
    collect_handlers,
    get_request_timeout_hint,
    request_timeout_hint,
    wrap_handler,
)
from aiokatcp.connection import wrap_handler as reexported_wrap_handler
from aiokatcp.core import Address, Message
from aiokatcp.exceptions import FailReply


class Color(enum.Enum):
    RED = 1
    DARK_BLUE = 2


def req(*args: bytes) -> Message:
    return Message.request("x", *args)


def test_reexported_from_connection() -> None:
    assert reexported_wrap_handler is wrap_handler


def test_typed_positional_and_default() -> None:
    def handler(ctx: Any, a: int, b: float = 2.5, c: Optional[str] = None) -> Any:
        return ctx, a, b, c

    wrapped = wrap_handler("x", handler, 1)
    assert wrapped("C", req(b"3")) == ("C", 3, 2.5, None)
    assert wrapped("C", req(b"3", b"1e3", b"caf\xc3\xa9")) == ("C", 3, 1000.0, "café")
    assert wrapped._aiokatcp_orig_handler is handler


def test_no_annotation_is_bytes() -> None:
    def handler(self: Any, ctx: Any, a, b=b"dflt"):  # type: ignore[no-untyped-def]
        return a, b

    wrapped = wrap_handler("x", handler, 2)
    assert wrapped(1, 2, req(b"raw\\_x")) == (b"raw\\_x", b"dflt")


def test_varargs_each_decoded() -> None:
    def handler(ctx: Any, first: bool, *rest: int) -> Any:
        return first, rest

    wrapped = wrap_handler("x", handler, 1)
    assert wrapped(None, req(b"1")) == (True, ())
    assert wrapped(None, req(b"0", b"4", b"5")) == (False, (4, 5))
    with pytest.raises(FailReply, match=r"^invalid literal for int\(\) with base 10: b'z'$"):
        wrapped(None, req(b"0", b"4", b"z"))


def test_union_and_enum_and_address() -> None:
    def handler(ctx: Any, v: Union[int, Color], addr: Address) -> Any:
        return v, addr

    wrapped = wrap_handler("x", handler, 1)
    assert wrapped(None, req(b"7", b"1.2.3.4:5"))[0] == 7
    assert wrapped(None, req(b"dark-blue", b"1.2.3.4"))[0] is Color.DARK_BLUE
    with pytest.raises(FailReply, match=r"^b'green' is not a valid int or Color$"):
        wrapped(None, req(b"green", b"1.2.3.4"))


def test_bad_argument_message_is_the_decoders_text() -> None:
    def handler(ctx: Any, x: int) -> None:
        pass

    wrapped = wrap_handler("x", handler, 1)
    with pytest.raises(FailReply) as info:
        wrapped(None, req(b"abc"))
    assert str(info.value) == "invalid literal for int() with base 10: b'abc'"


def test_wrong_counts() -> None:
    def handler(ctx: Any, x: int, y: int = 0) -> None:
        pass

    wrapped = wrap_handler("add", handler, 1)
    with pytest.raises(FailReply, match=r"^missing a required argument: 'x'$"):
        wrapped(None, req())
    with pytest.raises(FailReply, match=r"^too many arguments for add$"):
        wrapped(None, req(b"1", b"2", b"3"))


def test_sync_and_async_handlers_returned_as_is() -> None:
    async def handler(ctx: Any, x: int) -> int:
        return x

    wrapped = wrap_handler("x", handler, 1)
    coro = wrapped(None, req(b"5"))
    with pytest.raises(StopIteration) as info:
        coro.send(None)
    assert info.value.value == 5


def test_string_annotations_resolved() -> None:
    # This module uses `from __future__ import annotations`, so these are strings.
    def handler(ctx: NotImportable, x: Optional[int] = None) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    wrapped = wrap_handler("x", handler, 1)
    assert wrapped(None, req(b"1")) is None


def test_rejected_signatures() -> None:
    def has_msg(ctx: Any, _msg: bytes) -> None:
        pass

    def kwonly(ctx: Any, *, x: int) -> None:
        pass

    def unregistered(ctx: Any, x: List[int]) -> None:
        pass

    def too_few() -> None:
        pass

    with pytest.raises(ValueError, match="_msg"):
        wrap_handler("x", has_msg, 1)
    with pytest.raises(TypeError, match="keyword-only"):
        wrap_handler("x", kwonly, 1)
    with pytest.raises(TypeError, match="parameter 'x'"):
        wrap_handler("x", unregistered, 1)
    with pytest.raises(ValueError, match="positional"):
        wrap_handler("x", too_few, 1)


class Mixin:
    def request_from_mixin(self, ctx: Any) -> None:
        """Mixin handler."""

    def request_removed(self, ctx: Any) -> None:
        """Removed later."""


class Base(Mixin):
    def request_foo_bar(self, ctx: Any, x: int) -> int:
        """Foo bar."""
        return x

    def inform_thing(self, a: int) -> None:
        pass

    def request_not_a_function(self, ctx: Any) -> None:
        """Replaced by a non-function below."""


class Derived(Base):
    request_removed = None  # type: ignore[assignment]
    request_not_a_function = 3  # type: ignore[assignment]

    def request_foo_bar(self, ctx: Any, x: int) -> int:
        """Overridden."""
        return -x


def test_collect_handlers_walks_mro() -> None:
    handlers = collect_handlers(Derived, "request_", 2, require_docstring=True)
    assert set(handlers) == {"from-mixin", "foo-bar", "not-a-function"}
    assert handlers["foo-bar"](None, None, req(b"3")) == -3
    informs = collect_handlers(Derived, "inform_", 1, require_docstring=False)
    assert set(informs) == {"thing"}


def test_collect_handlers_requires_docstring() -> None:
    class NoDoc:
        def request_x(self, ctx: Any) -> None:
            pass

    with pytest.raises(TypeError, match="docstring"):
        collect_handlers(NoDoc, "request_", 2, require_docstring=True)
    assert set(collect_handlers(NoDoc, "request_", 2, require_docstring=False)) == {"x"}


def test_collect_handlers_bad_name() -> None:
    class BadName:
        def request_1x(self, ctx: Any) -> None:
            """Bad."""

    with pytest.raises(TypeError, match="not a valid message name"):
        collect_handlers(BadName, "request_", 2, require_docstring=True)


def test_request_timeout_hint_decorator() -> None:
    @request_timeout_hint(12.5)
    def handler(self: Any, ctx: Any) -> None:
        pass

    assert get_request_timeout_hint(handler) == 12.5
    assert get_request_timeout_hint(wrap_handler("x", handler, 2)) == 12.5
    assert get_request_timeout_hint(lambda: None) is None
    with pytest.raises(ValueError):
        request_timeout_hint(-1)


def test_wrapper_signature_names_fixed_parameters_and_msg() -> None:
    """As in 2.x: the wrapper takes the handler's own fixed parameters plus ``_msg``."""
    import inspect

    def request_x(this: Any, context: Any, x: int = 0) -> int:
        """Doc."""
        return x

    wrapped = wrap_handler("x", request_x, 2)
    assert list(inspect.signature(wrapped).parameters) == ["this", "context", "_msg"]
    assert wrapped.__name__ == "request_x" and wrapped.__doc__ == "Doc."
    assert wrapped(1, 2, req()) == 0
    assert wrapped(1, 2, req(b"5")) == 5
