"""Writing TOML (the standard library only reads it): plain tables, arrays, scalars.

What the configurator writes back after an edit. Comments in the edited file are not kept
(the previous file is kept whole as a backup beside it). Keys needing quotes are quoted;
strings are written as JSON strings, which are valid TOML basic strings.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def dumps(tree: dict[str, Any]) -> str:
    """The TOML text of a nested dict (None values are left out)."""
    lines: list[str] = []
    _table(tree, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(node: dict[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in node.items() if v is not None and not _is_table(v)}
    if path and (scalars or not any(_is_table(v) for v in node.values())):
        lines += ["", f"[{'.'.join(key(p) for p in path)}]"]
    lines += [f"{key(k)} = {value(v)}" for k, v in scalars.items()]
    for k, v in node.items():
        if isinstance(v, dict):
            _table(v, [*path, k], lines)
        elif _is_table(v):
            for item in v:
                lines += ["", f"[[{'.'.join(key(p) for p in [*path, k])}]]"]
                lines += [f"{key(ik)} = {value(iv)}" for ik, iv in item.items() if iv is not None]


def _is_table(v: Any) -> bool:
    return isinstance(v, dict) or (
        isinstance(v, list) and bool(v) and all(isinstance(i, dict) for i in v)
    )


def key(k: str) -> str:
    """A key, bare when it can be."""
    return k if _BARE.fullmatch(k) else json.dumps(k)


def value(v: Any) -> str:
    """A scalar, array or inline table."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, datetime.datetime | datetime.date | datetime.time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(value(i) for i in v) + "]"
    if isinstance(v, dict):
        inner = ", ".join(f"{key(k)} = {value(i)}" for k, i in v.items() if i is not None)
        return "{ " + inner + " }" if inner else "{}"
    return json.dumps(str(v))
