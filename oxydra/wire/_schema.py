"""Per-provider rewrites of a tool's JSON Schema.

Our tool schemas are plain JSON Schema. OpenAI's strict mode wants every property required and
`additionalProperties: false` on every object (optional fields become nullable); Gemini accepts
an OpenAPI subset and rejects keywords outside it. Both rewrites return new dicts and never
mutate their input.

The compact dialect, for OpenAI-compatible servers that turn a tool schema into a sampling
grammar (llama.cpp's server crashed on `maxLength`), keeps only the shape of the arguments:
types, properties, required, enums, items, descriptions. The dropped keywords only validate,
and arguments are validated against the full schema on our side anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Keywords Gemini's `Schema` object does not know (ai.google.dev, "Schema" reference).
GEMINI_DROPPED_KEYWORDS = frozenset(
    {"additionalProperties", "$schema", "$id", "$comment", "examples", "default", "const"}
)

# Validation-only JSON Schema keywords (draft 2020-12 "validation" and "format" vocabularies),
# plus annotations a grammar builder has no use for.
COMPACT_DROPPED_KEYWORDS = frozenset(
    {
        "maxLength", "minLength", "pattern", "format", "contentEncoding", "contentMediaType",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "minItems", "maxItems", "uniqueItems", "minContains", "maxContains",
        "minProperties", "maxProperties", "propertyNames", "patternProperties",
        "dependentRequired", "dependentSchemas",
        "$schema", "$id", "$comment", "examples", "default", "deprecated", "readOnly",
        "writeOnly", "title",
    }
)  # fmt: skip

_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
_SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_SCHEMA_VALUES = frozenset({"items", "additionalProperties", "not", "if", "then", "else"})
Rewrite = Callable[[dict[str, Any]], dict[str, Any]]


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI strict-mode form: closed objects, all properties required, optional ones nullable."""
    out = _rewrite_children(schema, strict_schema)
    props = out.get("properties")
    if out.get("type") == "object" or isinstance(props, dict):
        out["additionalProperties"] = False
        if isinstance(props, dict):
            required = set(schema.get("required", []))
            out["properties"] = {
                name: sub if name in required else _nullable(sub) for name, sub in props.items()
            }
            out["required"] = list(props)
    return out


def gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Gemini's OpenAPI subset: drop the keywords it rejects, recursively."""
    kept = {k: v for k, v in schema.items() if k not in GEMINI_DROPPED_KEYWORDS}
    return _rewrite_children(kept, gemini_schema)


def compact_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The shape of `schema` without validation keywords (`COMPACT_DROPPED_KEYWORDS`)."""
    kept = {k: v for k, v in schema.items() if k not in COMPACT_DROPPED_KEYWORDS}
    return _rewrite_children(kept, compact_schema)


def _rewrite_children(schema: dict[str, Any], rewrite: Rewrite) -> dict[str, Any]:
    """Apply `rewrite` to every sub-schema one level down, by the keyword that holds it."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: rewrite(v) if isinstance(v, dict) else v for k, v in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [rewrite(v) if isinstance(v, dict) else v for v in value]
        elif key in _SCHEMA_VALUES and isinstance(value, dict):
            out[key] = rewrite(value)
        else:
            out[key] = value
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if "enum" in schema:  # `null` must be one of the values, whatever the type says
        return schema if None in schema["enum"] else {"anyOf": [schema, {"type": "null"}]}
    if isinstance(kind, str) and kind != "null":
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list) and "null" not in kind:
        return {**schema, "type": [*kind, "null"]}
    if "anyOf" in schema:
        return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}
    return schema
