"""`config show`: the effective config as TOML, each value with the layer it came from.

Secrets are masked: values of keys named like a credential, and credential-like headers.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from oxydra.config.loader import LoadedConfig

_SECRET_KEY = re.compile(r"(api_key|auth_token|token|secret|password|passwd)$", re.IGNORECASE)
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie", re.IGNORECASE)
MASK = "********"


def is_secret_key(dotted: str) -> bool:
    """Whether the value at `dotted` is a credential that must never be printed."""
    parts = dotted.split(".")
    if _SECRET_KEY.search(parts[-1]) and not parts[-1].endswith("_env"):
        return True
    return (
        len(parts) >= 2 and parts[-2] == "extra_headers" and bool(_SECRET_HEADER.search(parts[-1]))
    )


def render_config(loaded: LoadedConfig) -> str:
    """The effective config as TOML with `# source` comments and secrets masked."""
    tree = msgspec.to_builtins(loaded.config)
    lines = [f"# layers, lowest first: {', '.join(dict.fromkeys(loaded.layers))}"]
    _render_table(tree, [], loaded.sources, lines)
    return "\n".join(lines) + "\n"


def _render_table(
    node: dict[str, Any], path: list[str], sources: dict[str, str], lines: list[str]
) -> None:
    scalars = {k: v for k, v in node.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in node.items() if isinstance(v, dict)}
    if scalars and path:
        lines.append("")
        lines.append(f"[{'.'.join(_key(p) for p in path)}]")
    for key, value in scalars.items():
        dotted = ".".join([*path, key])
        if value is None:
            continue
        shown = _toml_value(MASK if is_secret_key(dotted) and value else value)
        source = _source(dotted, sources)
        lines.append(f"{_key(key)} = {shown}  # {source}")
    for key, value in tables.items():
        _render_table(value, [*path, key], sources, lines)


def _source(dotted: str, sources: dict[str, str]) -> str:
    path = dotted.split(".")
    while path:
        found = sources.get(".".join(path))
        if found:
            return found
        path.pop()
    return "default"


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))
