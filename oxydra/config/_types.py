"""Type introspection over the config Structs: what type sits at a key path.

The loader needs this to check keys from files before validation (so an unknown key can
suggest the nearest known one), and to type values that arrive as text (environment, CLI).
"""

from __future__ import annotations

import enum
import functools
import types
import typing
from typing import Any, Literal, get_args, get_origin

import msgspec


def unwrap(tp: Any) -> Any:
    """Strip `Annotated[...]` and `X | None` down to the value type."""
    while True:
        origin = get_origin(tp)
        if origin is typing.Annotated:
            tp = get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in get_args(tp) if a is not type(None)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


def is_struct(tp: Any) -> bool:
    """Whether `tp` (already unwrapped) is a msgspec Struct class."""
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def is_optional(tp: Any) -> bool:
    """Whether `None` is an accepted value of `tp`."""
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    return get_origin(tp) in (typing.Union, types.UnionType) and type(None) in get_args(tp)


@functools.cache
def struct_fields(cls: type[msgspec.Struct]) -> dict[str, Any]:
    """Field name to type hint (with extras) of a Struct class."""
    return typing.get_type_hints(cls, include_extras=True)


@functools.cache
def required_fields(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    """Fields of a Struct that have no default."""
    return tuple(f.name for f in msgspec.structs.fields(cls) if f.required)


def mapping_value_type(tp: Any) -> Any | None:
    """For `dict[str, V]` return V, else None."""
    tp = unwrap(tp)
    if get_origin(tp) is dict:
        return get_args(tp)[1]
    return None


def child_type(tp: Any, key: str) -> Any | None:
    """The type found one level below `tp` at `key`, or None when `key` is unknown."""
    base = unwrap(tp)
    if is_struct(base):
        return struct_fields(base).get(key)
    return mapping_value_type(base)


def is_table(tp: Any) -> bool:
    """Whether values of `tp` are TOML tables we merge key by key (Structs and maps)."""
    base = unwrap(tp)
    return is_struct(base) or mapping_value_type(base) is not None


def suggest(key: str, tp: Any) -> str:
    """' (did you mean `x`?)' for the nearest known key of a Struct, or ''."""
    base = unwrap(tp)
    if not is_struct(base):
        return ""
    import difflib  # only for a misspelt key

    close = difflib.get_close_matches(key, list(struct_fields(base)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe(tp: Any) -> str:
    """A short human name for a type: `int > 0`, `one of 'a', 'b'`, `a list of str`."""
    origin = get_origin(tp)
    if origin is typing.Annotated:
        inner, *extras = get_args(tp)
        bounds = [_describe_meta(m) for m in extras if isinstance(m, msgspec.Meta)]
        return describe(inner) + "".join(bounds)
    if origin in (typing.Union, types.UnionType):
        options = [describe(a) for a in get_args(tp) if a is not type(None)]
        text = " or ".join(options)
        return f"{text} (or unset)" if type(None) in get_args(tp) else text
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if origin is list:
        return f"a list of {describe(get_args(tp)[0])}"
    if origin is dict or is_struct(tp):
        return "a table"
    return getattr(tp, "__name__", str(tp))


def _describe_meta(meta: msgspec.Meta) -> str:
    bounds = []
    for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        value = getattr(meta, attr)
        if value is not None:
            bounds.append(f"{sign} {value}")
    return (" " + " and ".join(bounds)) if bounds else ""
