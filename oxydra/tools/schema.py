"""JSON Schema for tools: from a function signature, and per provider dialect.

`signature_schema` turns type hints into one msgspec Struct (`msgspec.defstruct`) and its
JSON Schema (`msgspec.json.schema`), with `$ref`s inlined so the schema is self-contained,
and descriptions taken from `Annotated[..., msgspec.Meta(description=...)]` or the
docstring's `Args:` section. Every problem of a signature is collected and reported in one
`ToolDefinitionError`.

`transform_schema` is the pure per-provider step (OpenAI strict mode, Gemini's subset);
`check_schema_limits` bounds schemas that come from outside (MCP servers).
"""

from __future__ import annotations

import copy
import inspect
import re
import typing
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from oxydra.core.errors import OxydraError

Dialect = Literal["openai", "openai_strict", "anthropic", "gemini"]
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Yields|Raises|Examples?|Notes?):\s*$")
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


class ToolDefinitionError(OxydraError):
    """A tool's signature cannot become a schema; `problems` lists every reason."""

    def __init__(self, tool: str, problems: list[str]) -> None:
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"tool '{tool}' cannot be registered:\n{listed}")
        self.tool = tool
        self.problems = problems


class Signature(msgspec.Struct, frozen=True, kw_only=True):
    """What `signature_schema` found: the argument Struct, its schema, and the context slot."""

    args_type: type[msgspec.Struct]
    parameters: dict[str, Any]
    description: str
    fields: tuple[str, ...]
    context_param: str | None
    nullable_defaults: frozenset[str]


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """The description (text before the first section) and the `Args:` entries."""
    lines = inspect.cleandoc(doc or "").splitlines()
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for line in lines:
        header = _SECTION.match(line.strip())
        if header and not line.startswith(" "):
            section, current = header.group(1), None
            continue
        if section is None:
            summary.append(line)
        elif section in ("Args", "Arguments", "Parameters"):
            current = _arg_line(line, args, current)
    return "\n".join(summary).strip(), {k: " ".join(v.split()) for k, v in args.items()}


def _arg_line(line: str, args: dict[str, str], current: str | None) -> str | None:
    stripped = line.strip()
    match = _ARG_LINE.match(stripped)
    indent = len(line) - len(line.lstrip())
    if match and (current is None or indent <= 4):
        name = match.group(1).lstrip("*")
        args[name] = match.group(2)
        return name
    if current is not None and stripped:
        args[current] += " " + stripped
    return current


def signature_schema(
    fn: Callable[..., Any], name: str, context_type: type, description: str | None = None
) -> Signature:
    """Build the argument Struct and schema of `fn`; raise ToolDefinitionError on problems."""
    problems: list[str] = []
    if not NAME_PATTERN.match(name):
        problems.append(f"name {name!r} must match {NAME_PATTERN.pattern}")
    if not inspect.iscoroutinefunction(fn):
        problems.append("the function must be 'async def'")
    doc_description, doc_args = parse_docstring(fn.__doc__)
    text = description or doc_description
    if not text:
        problems.append("no description: add a docstring")
    hints = _hints(fn, problems)
    fields, context_param, nullable = _fields(fn, hints, doc_args, context_type, problems)
    unknown = sorted(set(doc_args) - {f[0] for f in fields} - {context_param})
    problems += [f"docstring documents '{n}', which is not a parameter" for n in unknown]
    if problems:
        raise ToolDefinitionError(name, problems + _schemaless(fields))
    args_type = msgspec.defstruct(
        f"{name}_arguments", fields, kw_only=True, forbid_unknown_fields=True
    )
    try:
        parameters = _struct_schema(args_type, name)
    except (TypeError, ValueError) as exc:  # name the parameters whose types have none
        raise ToolDefinitionError(name, _schemaless(fields) or [str(exc)]) from exc
    return Signature(
        args_type=args_type,
        parameters=parameters,
        description=text,
        fields=tuple(f[0] for f in fields),
        context_param=context_param,
        nullable_defaults=frozenset(nullable),
    )


def _hints(fn: Callable[..., Any], problems: list[str]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except (NameError, TypeError) as exc:
        problems.append(f"type hints cannot be resolved ({exc}); use module-level types")
        return {}


_Field = tuple[str, Any] | tuple[str, Any, Any]


def _fields(
    fn: Callable[..., Any],
    hints: dict[str, Any],
    doc_args: dict[str, str],
    context_type: type,
    problems: list[str],
) -> tuple[list[_Field], str | None, set[str]]:
    fields: list[_Field] = []
    context_param: str | None = None
    droppable: set[str] = set()
    for param in inspect.signature(fn).parameters.values():
        hint = hints.get(param.name)
        if hint is context_type:
            context_param = param.name
            continue
        problem = _param_problem(param, hint)
        if problem:
            problems.append(problem)
            continue
        if param.name not in doc_args and _meta_description(hint) is None:
            problems.append(f"'{param.name}' has no description (docstring Args: or msgspec.Meta)")
        field = _field(param, hint, doc_args.get(param.name), problems)
        if field is not None:
            fields.append(field)
            if len(field) == 3 and not _accepts_none(hint):
                droppable.add(param.name)
    return fields, context_param, droppable


def _param_problem(param: inspect.Parameter, hint: Any) -> str | None:
    if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
        return f"'{param.name}': *args and **kwargs cannot be described to a model"
    if param.kind is param.POSITIONAL_ONLY:
        return f"'{param.name}': positional-only parameters are not supported"
    if hint is None:
        return f"'{param.name}' has no type annotation"
    return None


def _field(
    param: inspect.Parameter, hint: Any, doc: str | None, problems: list[str]
) -> _Field | None:
    annotated = hint
    if doc and _meta_description(hint) is None:
        annotated = typing.Annotated[hint, msgspec.Meta(description=doc)]
    if param.default is inspect.Parameter.empty:
        return (param.name, annotated)
    try:
        msgspec.convert(msgspec.to_builtins(param.default), hint)
    except (msgspec.ValidationError, TypeError) as exc:
        problems.append(f"'{param.name}': default {param.default!r} does not fit its type ({exc})")
        return None
    return (param.name, annotated, param.default)


def _schemaless(fields: list[_Field]) -> list[str]:
    """A problem for each field whose type has no JSON Schema (checked one by one only when
    the whole Struct's schema failed: every schema is built once on the way that works)."""
    problems = []
    for field in fields:
        try:
            msgspec.json.schema(field[1])
        except (TypeError, ValueError) as exc:
            problems.append(f"'{field[0]}': type {field[1]!r} has no JSON Schema ({exc})")
    return problems


def _meta_description(hint: Any) -> str | None:
    if typing.get_origin(hint) is typing.Annotated:
        for meta in hint.__metadata__:
            if isinstance(meta, msgspec.Meta) and meta.description:
                return meta.description
    return None


def _accepts_none(hint: Any) -> bool:
    try:
        msgspec.convert(None, hint)
    except (msgspec.ValidationError, TypeError):
        return False
    return True


def _struct_schema(args_type: type[msgspec.Struct], name: str) -> dict[str, Any]:
    raw = msgspec.json.schema(args_type)
    try:
        schema = inline_refs(raw)
    except ValueError as exc:
        raise ToolDefinitionError(name, [str(exc)]) from exc
    return _lean(strip_titles(schema))


def _lean(schema: dict[str, Any]) -> dict[str, Any]:
    """The same contract in fewer bytes: every tool's schema is in every request.

    Arguments are validated against the argument Struct (unknown fields refused, `null`
    accepted where the parameter allows it), so the schema need not repeat what only
    validates: `additionalProperties: false` at the top (strict dialects add it back), an
    empty `required`, and the `null` branch and `null` default of an optional property
    (leaving it out means the same). Nested objects keep theirs.
    """
    schema = dict(schema)
    if schema.get("additionalProperties") is False:
        del schema["additionalProperties"]
    if schema.get("required") == []:
        del schema["required"]
    required = set(schema.get("required", ()))
    properties = schema.get("properties")
    if isinstance(properties, dict):
        schema["properties"] = {
            name: prop if name in required else _without_null(prop)
            for name, prop in properties.items()
        }
    return schema


def _without_null(prop: Any) -> Any:
    if isinstance(prop, dict) and "default" in prop and prop["default"] is None:
        prop = {k: v for k, v in prop.items() if k != "default"}
    options = prop.get("anyOf") if isinstance(prop, dict) else None
    if not isinstance(options, list):
        return prop
    rest = [o for o in options if o != {"type": "null"}]
    if len(rest) != 1 or len(rest) == len(options) or not isinstance(rest[0], dict):
        return prop
    merged = {k: v for k, v in prop.items() if k != "anyOf"}
    return {**rest[0], **merged}


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace every `#/$defs/...` reference by its definition; ValueError on recursion."""
    defs = schema.get("$defs", {})

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                key = ref.removeprefix("#/$defs/")
                if key in seen:
                    raise ValueError(f"recursive type '{key}' cannot be inlined")
                merged = {**defs[key], **{k: v for k, v in node.items() if k != "$ref"}}
                return resolve(merged, (*seen, key))
            return {k: resolve(v, seen) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(v, seen) for v in node]
        return node

    return resolve(schema, ())


def strip_titles(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop `title` keywords (msgspec adds Struct names) but never a property named title."""

    def walk(node: Any, in_properties: bool) -> Any:
        if isinstance(node, dict):
            return {
                k: walk(v, k == "properties" and not in_properties)
                for k, v in node.items()
                if in_properties or k != "title"
            }
        if isinstance(node, list):
            return [walk(v, False) for v in node]
        return node

    return walk(schema, False)


def transform_schema(schema: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    """Adapt a tool schema to a provider's dialect (pure; the input is not modified).

    - `openai_strict`: every property required, optional ones made nullable, defaults
      dropped, `additionalProperties: false` on every object (OpenAI structured outputs).
    - `gemini`: `additionalProperties`, `$schema` and `default` removed (its OpenAPI subset
      rejects them); `const` becomes a one-value `enum`.
    - `openai`, `anthropic`: unchanged.
    """
    result = copy.deepcopy(schema)
    if dialect == "openai_strict":
        return _strict(result)
    if dialect == "gemini":
        return _gemini(result)
    return result


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _strict(v) for k, v in node.items() if k != "default"}
    if node.get("type") == "object" and "properties" in node:
        required = set(node.get("required", []))
        for key, prop in node["properties"].items():
            if key not in required:
                node["properties"][key] = _nullable(prop)
        node["required"] = list(node["properties"])
        node["additionalProperties"] = False
    return node


def _nullable(prop: dict[str, Any]) -> dict[str, Any]:
    options = prop.get("anyOf")
    if isinstance(options, list) and any(o.get("type") == "null" for o in options):
        return prop
    if isinstance(prop.get("type"), str) and "enum" not in prop:
        return {**prop, "type": [prop["type"], "null"]}
    return {"anyOf": [prop, {"type": "null"}]}


def _gemini(node: Any) -> Any:
    if isinstance(node, list):
        return [_gemini(v) for v in node]
    if not isinstance(node, dict):
        return node
    dropped = {"additionalProperties", "$schema", "default"}
    node = {k: _gemini(v) for k, v in node.items() if k not in dropped}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    return node


def check_schema_limits(
    schema: dict[str, Any], *, max_bytes: int = 64 * 1024, max_depth: int = 32
) -> list[str]:
    """Problems with a schema from outside (size, nesting); empty when acceptable."""
    problems: list[str] = []
    size = len(msgspec.json.encode(schema))
    if size > max_bytes:
        problems.append(f"schema is {size} bytes (limit {max_bytes})")
    if _depth(schema) > max_depth:
        problems.append(f"schema nests deeper than {max_depth} levels")
    if schema.get("type") != "object":
        problems.append("a tool's parameters must be a JSON object schema")
    return problems


def _depth(node: Any) -> int:
    if isinstance(node, dict):
        return 1 + max((_depth(v) for v in node.values()), default=0)
    if isinstance(node, list):
        return 1 + max((_depth(v) for v in node), default=0)
    return 0
