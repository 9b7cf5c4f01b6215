"""A server's `inputSchema`, checked before any provider sees it.

A provider rejects the whole request when one tool's schema is malformed, so a single bad
server could take every turn down. Checked here, structurally and without a JSON Schema
library: size and depth (`check_schema_limits`), an object at the top, and every keyword we
know carrying a value of the right JSON type (`type` a known type name or a list of them,
`properties` an object of schemas, `required` a list of strings, `enum` a list, combinators
lists of schemas). Local `#/$defs` references are inlined; other references are refused.
"""

from __future__ import annotations

from typing import Any

from oxydra.tools.schema import check_schema_limits, inline_refs, strip_titles

_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "propertyNames")


def checked_schema(schema: Any, *, max_bytes: int) -> tuple[dict[str, Any] | None, list[str]]:
    """The schema ready to send (refs inlined, titles kept), or None and the problems."""
    if not isinstance(schema, dict):
        return None, ["inputSchema is not a JSON object"]
    problems = check_schema_limits(schema, max_bytes=max_bytes)
    if problems:
        return None, problems
    problems = _problems(schema, "inputSchema")
    if problems:
        return None, problems[:5]
    try:
        inlined = inline_refs(schema) if "$defs" in schema else schema
    except (ValueError, KeyError) as exc:
        return None, [f"inputSchema references cannot be inlined: {exc}"]
    result = {k: v for k, v in strip_titles(inlined).items() if k not in ("$schema", "$id")}
    result.setdefault("properties", {})
    return result, []


def _problems(node: Any, at: str) -> list[str]:
    if isinstance(node, bool):
        return []
    if not isinstance(node, dict):
        return [f"{at} must be a schema object"]
    out: list[str] = []
    out += _type_problems(node.get("type", "object"), at)
    ref = node.get("$ref")
    if ref is not None and not (isinstance(ref, str) and ref.startswith("#/$defs/")):
        out.append(f"{at}.$ref {ref!r}: only local '#/$defs/...' references are accepted")
    required = node.get("required", [])
    if not (isinstance(required, list) and all(isinstance(r, str) for r in required)):
        out.append(f"{at}.required must be a list of strings")
    if "enum" in node and not isinstance(node["enum"], list):
        out.append(f"{at}.enum must be a list")
    for key in _SCHEMA_MAPS:
        value = node.get(key, {})
        if not isinstance(value, dict):
            out.append(f"{at}.{key} must be an object")
            continue
        for name, sub in value.items():
            out += _problems(sub, f"{at}.{key}.{name}")
    for key in _SCHEMA_LISTS:
        value = node.get(key, [])
        if not isinstance(value, list):
            out.append(f"{at}.{key} must be a list")
            continue
        for index, sub in enumerate(value):
            out += _problems(sub, f"{at}.{key}[{index}]")
    for key in _SCHEMA_ONE:
        if key in node:
            out += _problems(node[key], f"{at}.{key}")
    return out


def _type_problems(kind: Any, at: str) -> list[str]:
    kinds = kind if isinstance(kind, list) else [kind]
    bad = [k for k in kinds if not (isinstance(k, str) and k in _TYPES)]
    return [f"{at}.type {k!r} is not a JSON Schema type" for k in bad]
