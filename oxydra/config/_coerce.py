"""Typing of values that arrive as text (environment variables, `--set`).

`OXYDRA__RUNTIME__MAX_TURNS=3` must become the int 3, `...__ALLOW=ls,cat` a list. The target
type comes from the schema; the text is parsed for that type, never guessed blindly.
"""

from __future__ import annotations

import json
from typing import Any, get_args, get_origin

import msgspec

from oxydra.config._types import describe, is_optional, unwrap

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class CoerceError(ValueError):
    """The text cannot be read as the expected type."""


def coerce_text(text: str, tp: Any) -> Any:
    """Read `text` as a value of config type `tp`.

    Lists accept JSON (`["a","b"]`) or comma-separated items; tables accept JSON objects;
    an empty string for an optional key means "unset".
    """
    if text == "" and is_optional(tp):
        return None
    base = unwrap(tp)
    origin = get_origin(base)
    try:
        if origin is list:
            items = _parse_list(text)
            return [
                coerce_text(str(i) if not isinstance(i, str) else i, get_args(base)[0])
                for i in items
            ]
        if origin is dict:
            return json.loads(text)
        if base is bool:
            return _parse_bool(text)
        value = msgspec.convert(text, tp, strict=False)
    except (msgspec.ValidationError, json.JSONDecodeError, CoerceError) as exc:
        raise CoerceError(f"expected {describe(tp)}, got {text!r}") from exc
    return value


def _parse_list(text: str) -> list[Any]:
    stripped = text.strip()
    if stripped.startswith("["):
        value = json.loads(stripped)
        if not isinstance(value, list):
            raise CoerceError("not a list")
        return value
    return [part.strip() for part in stripped.split(",") if part.strip()]


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise CoerceError(f"not a boolean: {text!r}")
