"""The type registry: annotated Python types <-> KATCP wire arguments.

Pure module: no asyncio. Everything that turns a Python value into argument
bytes (or back) goes through :func:`encode` and :func:`get_decoder`; nothing
else in the package decodes by hand.

Lookup rule: the newest registration whose type is a superclass of the
requested type wins, so ``bool`` (registered after ``numbers.Integral``) and
``enum.Enum`` (registered last) take priority over the numeric types they
subclass. Lookups are cached; :func:`register_type` clears the caches.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import numbers
import sys
import typing
from typing import Any, Callable, Dict, Generic, List, Optional, Tuple, Type, TypeVar, Union

from ._values import Address, LogLevel, Now, Timestamp

__all__ = ["TypeInfo", "decode", "encode", "get_decoder", "get_type", "register_type"]

_T = TypeVar("_T")
_E = TypeVar("_E", bound=enum.Enum)

if sys.version_info >= (3, 10):
    import types

    _UNION_TYPES: Tuple[Any, ...] = (Union, types.UnionType)
else:  # pragma: no cover - depends on Python version
    _UNION_TYPES = (Union,)


class TypeInfo(Generic[_T]):
    """How one Python type is put on the wire.

    Parameters
    ----------
    type_
        The Python type (subclasses are covered too).
    name
        The KATCP type name, as used in ``#sensor-list``.
    encode
        Turns a value into argument bytes.
    get_decoder
        Given the requested (sub)class, returns a function from bytes to a
        value; raises :exc:`ValueError` for bytes that are not a valid value.
    default
        Given the requested (sub)class, returns its default value.
    """

    def __init__(
        self,
        type_: Type[_T],
        name: str,
        encode: Callable[[_T], bytes],
        get_decoder: Callable[[Type[_T]], Callable[[bytes], _T]],
        default: Callable[[Type[_T]], _T],
    ) -> None:
        self.type_ = type_
        self.name = name
        self.encode = encode
        self.get_decoder = get_decoder
        self.default = default

    def decode(self, cls: Type[_T], value: bytes) -> _T:
        """Decode `value` as `cls` (kept for backwards compatibility)."""
        return self.get_decoder(cls)(value)

    def __repr__(self) -> str:
        return f"TypeInfo({self.type_.__name__}, {self.name!r})"


_types: List[TypeInfo[Any]] = []


def register_type(
    type_: Type[_T],
    name: str,
    encode: Callable[[_T], bytes],
    get_decoder: Callable[[Type[_T]], Callable[[bytes], _T]],
    default: Optional[Callable[[Type[_T]], _T]] = None,
) -> None:
    """Register a type for encoding and decoding.

    It applies to subclasses of `type_` too, unless a more recently
    registered type also matches them.

    Parameters
    ----------
    type_, name, encode, get_decoder
        See :class:`TypeInfo`.
    default
        Given the requested (sub)class, returns its default value; if omitted,
        the class is called with no arguments.

    Raises
    ------
    ValueError
        if `type_` is already registered
    """
    if any(info.type_ is type_ for info in _types):
        raise ValueError(f"{type_!r} is already registered")
    if default is None:
        default = _call_default
    _types.append(TypeInfo(type_, name, encode, get_decoder, default))
    _clear_caches()


def _clear_caches() -> None:
    get_type.cache_clear()
    get_decoder.cache_clear()
    _encoder_for.cache_clear()


def _call_default(cls: Type[_T]) -> _T:
    return cls()


@functools.cache
def get_type(type_: Type[_T]) -> TypeInfo[_T]:
    """Return the registration for `type_`.

    Raises
    ------
    TypeError
        if no registered type is a superclass of `type_`
    """
    for info in reversed(_types):
        if issubclass(type_, info.type_):
            return typing.cast(TypeInfo[_T], info)
    raise TypeError(f"{type_} is not registered")


@functools.cache
def _encoder_for(type_: Any) -> Callable[[Any], bytes]:
    return get_type(type_).encode


def encode(value: Any) -> bytes:
    """Encode a value to argument bytes using its type's registration.

    Raises
    ------
    TypeError
        if the value's type is not registered
    """
    value_type: Any = type(value)
    if value_type is bytes:
        return value  # type: ignore[no-any-return]
    if value_type is int:  # (as _encode_int, without the calls: the commonest value)
        return b"%d" % value
    return _encoder_for(value_type)(value)


def _strip_optional(cls: Any) -> Tuple[Any, ...]:
    """Members of a Union annotation with ``None`` removed (or ``(cls,)``)."""
    if typing.get_origin(cls) in _UNION_TYPES:
        return tuple(arg for arg in typing.get_args(cls) if arg is not type(None))
    return (cls,)


@functools.cache
def get_decoder(cls: Any) -> Callable[[bytes], Any]:
    """Return a function that decodes argument bytes to `cls`.

    `cls` may be a registered type, ``Optional[T]`` (``None`` is dropped: a
    present argument is always a ``T``) or a union, in which case exactly
    one member must accept the value.

    Raises
    ------
    TypeError
        if `cls` (or a member of a union) is not registered
    """
    members = _strip_optional(cls)
    if len(members) == 1:
        member = members[0]
        return get_type(member).get_decoder(member)
    decoders = [(member, get_decoder(member)) for member in members]
    expected = " or ".join(getattr(member, "__name__", str(member)) for member in members)

    def decode_union(raw: bytes) -> Any:
        good: List[Any] = []
        for _member, decoder in decoders:
            try:
                good.append(decoder(raw))
            except ValueError:
                pass
        if len(good) == 1:
            return good[0]
        if not good:
            raise ValueError(f"{raw!r} is not a valid {expected}")
        raise ValueError(
            f"{raw!r} is ambiguous: it is a valid value for more than one of {expected}"
        )

    return decode_union


def decode(cls: Any, value: bytes) -> Any:
    """Decode argument bytes to `cls` (see :func:`get_decoder`).

    Raises
    ------
    ValueError
        if `value` is not a valid `cls`
    TypeError
        if `cls` is not registered
    """
    return get_decoder(cls)(value)


# -- built-in registrations ------------------------------------------------------------------


def _number_error(raw: bytes, type_name: str) -> ValueError:
    """Python's own message for a bad number (the text aiokatcp 2.x clients see)."""
    if type_name == "integer":
        return ValueError(f"invalid literal for int() with base 10: {raw!r}")
    return ValueError(f"could not convert string to float: {raw!r}")


def _number_decoder_getter(
    base: Callable[[bytes], Any], type_name: str
) -> Callable[[Type[_T]], Callable[[bytes], _T]]:
    """Build ``get_decoder`` for a numeric type parsed by `base` (``int`` or ``float``)."""

    def get_number_decoder(cls: Type[_T]) -> Callable[[bytes], _T]:
        def decode_number(raw: bytes) -> _T:
            # Reject what Python's number parsers accept but KATCP does not (blanks, ``_``).
            if not raw or raw[0] in b" \t" or raw[-1] in b" \t" or b"_" in raw:
                raise _number_error(raw, type_name)
            try:
                value = base(raw)
            except ValueError:
                raise _number_error(raw, type_name) from None
            return value if cls is base else cls(value)  # type: ignore[call-arg]

        return decode_number

    return get_number_decoder


_get_int_decoder = _number_decoder_getter(int, "integer")
_get_float_decoder = _number_decoder_getter(float, "float")


def _encode_float(value: numbers.Real) -> bytes:
    return repr(float(value)).encode("ascii")


def _encode_int(value: numbers.Integral) -> bytes:
    return b"%d" % int(value)


def _encode_bool(value: bool) -> bytes:
    return b"1" if value else b"0"


def _get_bool_decoder(cls: Type[bool]) -> Callable[[bytes], bool]:
    def decode_bool(raw: bytes) -> bool:
        if raw == b"1":
            return True
        if raw == b"0":
            return False
        raise ValueError(f"boolean must be 0 or 1, not {raw!r}")

    return decode_bool


def _get_bytes_decoder(cls: Type[bytes]) -> Callable[[bytes], bytes]:
    if cls is bytes:
        return bytes
    return cls


def _encode_str(value: str) -> bytes:
    return value.encode("utf-8")


def _get_str_decoder(cls: Type[str]) -> Callable[[bytes], str]:
    def decode_str(raw: bytes) -> str:
        return cls(raw, "utf-8")  # UnicodeDecodeError (a ValueError) as in aiokatcp 2.x

    return decode_str


def _encode_address(value: Address) -> bytes:
    return bytes(value)


def _get_address_decoder(cls: Type[Address]) -> Callable[[bytes], Address]:
    return cls.parse


def _encode_timestamp(value: Timestamp) -> bytes:
    return float.__repr__(value).encode("ascii")


def _get_timestamp_decoder(cls: Type[Timestamp]) -> Callable[[bytes], Timestamp]:
    decode_float = _get_float_decoder(float)

    def decode_timestamp(raw: bytes) -> Timestamp:
        return cls(decode_float(raw))

    return decode_timestamp


def _enum_wire_name(member: enum.Enum) -> bytes:
    value = getattr(member, "katcp_value", None)
    if value is None:
        return member.name.encode("ascii").lower().replace(b"_", b"-")
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


@functools.cache
def _enum_tables(cls: Type[enum.Enum]) -> Tuple[Dict[enum.Enum, bytes], Dict[bytes, enum.Enum]]:
    to_wire = {member: _enum_wire_name(member) for member in cls}
    from_wire: Dict[bytes, enum.Enum] = {}
    for member, wire in to_wire.items():
        from_wire.setdefault(wire, member)
    # Aliases (members sharing a value) are not iterated; give them their own names too.
    for name, member in cls.__members__.items():
        if member.name != name and getattr(member, "katcp_value", None) is None:
            from_wire.setdefault(name.encode("ascii").lower().replace(b"_", b"-"), member)
    return to_wire, from_wire


def _encode_enum(value: enum.Enum) -> bytes:
    return _enum_tables(type(value))[0][value]


def _get_enum_decoder(cls: Type[_E]) -> Callable[[bytes], _E]:
    from_wire = _enum_tables(cls)[1]

    def decode_enum(raw: bytes) -> _E:
        try:
            return from_wire[raw]  # type: ignore[return-value]
        except KeyError:
            raise ValueError(f"{raw!r} is not a valid value for {cls.__name__}") from None

    return decode_enum


def _enum_default(cls: Type[_E]) -> _E:
    return next(iter(cls))


register_type(numbers.Real, "float", _encode_float, _get_float_decoder)  # type: ignore[type-abstract]
register_type(numbers.Integral, "integer", _encode_int, _get_int_decoder)  # type: ignore[type-abstract]
register_type(bool, "boolean", _encode_bool, _get_bool_decoder)
register_type(bytes, "string", bytes, _get_bytes_decoder)
register_type(str, "string", _encode_str, _get_str_decoder)
register_type(
    Address,
    "address",
    _encode_address,
    _get_address_decoder,
    lambda cls: cls(ipaddress.IPv4Address("0.0.0.0")),
)
register_type(Timestamp, "timestamp", _encode_timestamp, _get_timestamp_decoder)
register_type(enum.Enum, "discrete", _encode_enum, _get_enum_decoder, _enum_default)

# LogLevel and Now are ordinary enums; importing them here documents that the
# generic enum rule covers them (``now``, ``warn``, ``trace``, ...).
_ = (LogLevel, Now)
