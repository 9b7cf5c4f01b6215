"""Parse one `SKILL.md`: YAML front matter between `---` lines, then a Markdown body.

Accepts both dialects as written, so files from either ecosystem load unchanged:
- Agent Skills: `name`, `description`, `license`, `compatibility`, `allowed-tools` (a
  space-separated string or a list), `metadata` (a map; OpenClaw nests JSON in it).
- The Rust Oxydra: `activation` (auto|manual|always), `requires` (tool names), `env` or
  `env_vars` (variables that must be set), `priority` (lower first, default 100). They are
  also read from `metadata.oxydra.*`.

Invariants:
1. Front matter is parsed with PyYAML's safe loader, capped at `MAX_FRONT_MATTER` bytes, and
   refused when it uses anchors or aliases (the "billion laughs" expansion).
2. Problems a reviewer should fix but that do not make the skill unusable (a name that differs
   from its folder, a long description) are warnings; a missing name or description, a bad
   type or an unknown activation is a `SkillError` naming the file and key.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from oxydra.core.errors import ToolError

MAX_FRONT_MATTER = 16 * 1024
MAX_DESCRIPTION = 1024
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
Activation = Literal["auto", "manual", "always"]


class SkillError(ToolError):
    """A SKILL.md that cannot be used; the message names the file and the key."""


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """The front matter of a skill, both dialects folded into one shape."""

    name: str
    description: str
    license: str | None = None
    compatibility: str | None = None
    allowed_tools: tuple[str, ...] = ()
    metadata: dict[str, Any] = {}
    activation: Activation = "auto"
    requires: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    priority: int = 100


def split_front_matter(text: str, origin: str) -> tuple[str, str]:
    """The front matter and the body of a SKILL.md text."""
    if text.startswith("\ufeff"):
        text = text[1:]
    first, _, rest = text.partition("\n")
    if first.strip() != "---":
        raise SkillError(f"{origin}: no YAML front matter (the file must start with '---')")
    match = re.search(r"^---[ \t]*\r?$", rest, flags=re.MULTILINE)
    if match is None:
        raise SkillError(f"{origin}: the front matter has no closing '---' line")
    head, body = rest[: match.start()], rest[match.end() :]
    if len(head.encode("utf-8")) > MAX_FRONT_MATTER:
        raise SkillError(f"{origin}: front matter is larger than {MAX_FRONT_MATTER} bytes")
    return head, body.lstrip("\r\n")


def load_yaml(head: str, origin: str) -> dict[str, Any]:
    """Rule 1: a safe, alias-free YAML mapping."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it
    try:
        if "&" in head or "*" in head:  # only then can there be an anchor or alias
            for event in yaml.parse(head, Loader=loader):
                if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                    raise SkillError(f"{origin}: YAML anchors and aliases are not allowed")
        data = yaml.load(head, Loader=loader)  # safe: CSafeLoader or SafeLoader, chosen above
    except yaml.YAMLError as exc:
        raise SkillError(f"{origin}: front matter is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SkillError(f"{origin}: front matter must be a mapping, got {type(data).__name__}")
    return data


def parse_manifest(data: dict[str, Any], origin: str) -> tuple[Manifest, list[str]]:
    """Rule 2: the manifest of `data`, and warnings for a reviewer."""
    oxy = (
        data.get("metadata", {}).get("oxydra", {}) if isinstance(data.get("metadata"), dict) else {}
    )
    oxy = oxy if isinstance(oxy, dict) else {}
    fields = {
        "name": _text(data, "name", origin, required=True),
        "description": _text(data, "description", origin, required=True),
        "license": _text(data, "license", origin),
        "compatibility": _text(data, "compatibility", origin),
        "allowed_tools": _names(data.get("allowed-tools"), "allowed-tools", origin),
        "metadata": _mapping(data.get("metadata"), origin),
        "activation": _activation(data.get("activation", oxy.get("activation", "auto")), origin),
        "requires": _names(data.get("requires", oxy.get("requires")), "requires", origin),
        "env": _names(data.get("env", data.get("env_vars", oxy.get("env"))), "env", origin),
        "priority": _priority(data.get("priority", oxy.get("priority", 100)), origin),
    }
    manifest = Manifest(**fields)  # type: ignore[arg-type]
    warnings = []
    if not NAME_RE.match(manifest.name) or len(manifest.name) > 64:
        warnings.append(f"{origin}: name {manifest.name!r} is not 1-64 of a-z, 0-9 and '-'")
    if len(manifest.description) > MAX_DESCRIPTION:
        warnings.append(f"{origin}: description is longer than {MAX_DESCRIPTION} characters")
    return manifest, warnings


def _text(data: dict[str, Any], key: str, origin: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise SkillError(f"{origin}: front matter key '{key}' is required")
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise SkillError(f"{origin}: '{key}' must be a string, got {type(value).__name__}")
    text = str(value).strip()
    if required and not text:
        raise SkillError(f"{origin}: '{key}' is empty")
    return text


def _names(value: object, key: str, origin: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise SkillError(f"{origin}: '{key}' must be a list of strings or a space-separated string")


def _mapping(value: object, origin: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SkillError(f"{origin}: 'metadata' must be a mapping, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def _activation(value: object, origin: str) -> Activation:
    if value not in ("auto", "manual", "always"):
        raise SkillError(f"{origin}: 'activation' must be auto, manual or always, got {value!r}")
    return value


def _priority(value: object, origin: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SkillError(f"{origin}: 'priority' must be an integer, got {type(value).__name__}")
    return value
