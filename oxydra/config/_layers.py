"""Merging configuration layers into one tree, with the source of every value.

Theory of operation:
1. The tree starts as the built-in defaults (`msgspec.to_builtins` of the root Struct); every
   leaf's source is `default`.
2. Each layer (a TOML file, the environment, `--set`) is merged key by key: tables merge,
   everything else (scalars, lists) replaces. The layer's label becomes the leaf's source.
3. A key the schema does not know is a problem (with the nearest known key); it is not merged.
4. A file whose top-level tables include `default` or `global` is a profiled file, as the
   Rust loader reads it (figment's nested profiles): `[default.<section>]` is merged, then
   `[global.<section>]` over it; tables named after other profiles are not selected, so
   they are skipped with a warning. (The Rust version's selected profile is always
   `default`.)
5. `validate_tree` then checks every leaf against its type and collects *all* problems,
   each naming the source (file or variable), the dotted key, the bad value and what was
   expected; only a tree without problems is converted into the Struct. (A valid tree, the
   usual case, is converted once, whole, and the key-by-key walk is skipped.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from oxydra.config._coerce import CoerceError, coerce_text
from oxydra.config._types import (
    child_type,
    describe,
    is_optional,
    is_struct,
    is_table,
    mapping_value_type,
    required_fields,
    struct_fields,
    suggest,
    unwrap,
)

PROFILES = ("default", "global")


class Layers:
    """The merged tree of one config root, its sources and the problems found so far."""

    def __init__(self, root: type[msgspec.Struct], defaults: msgspec.Struct | None = None) -> None:
        self.root = root
        self.tree: dict[str, Any] = msgspec.to_builtins(defaults if defaults else root())
        self.sources: dict[str, str] = {}
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.layers: list[str] = ["default"]
        self._built: msgspec.Struct | None = None  # the tree as converted by validate_tree
        self._mark(self.tree, [], "default")

    def _mark(self, node: Any, path: list[str], source: str) -> None:
        if isinstance(node, dict) and node and is_table(self.type_at(path)):
            for key, value in node.items():
                self._mark(value, [*path, key], source)
        else:
            self.sources[".".join(path)] = source

    def type_at(self, path: list[str]) -> Any:
        """The schema type at `path` (the root Struct for `[]`), or None if unknown."""
        tp: Any = self.root
        for key in path:
            tp = child_type(tp, key)
            if tp is None:
                return None
        return tp

    def merge_file(self, path: Path) -> bool:
        """Merge one TOML file if it exists; syntax errors become problems. Returns found."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return False
        except OSError as exc:
            self.problems.append(f"{path}: cannot read: {exc.strerror}")
            return True
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            self.problems.append(
                f"{path}: not valid UTF-8 (byte {exc.start}, line {line}): save it as UTF-8"
            )
            return True
        import tomllib  # not loaded when there is no file to read

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            self.problems.append(f"{path}: TOML syntax error: {exc}")
            return True
        except RecursionError:
            self.problems.append(f"{path}: nested too deeply to read (arrays or inline tables)")
            return True
        if (deep := too_deep(data)) is not None:
            self.problems.append(
                f"{path}: key '{deep}' is nested more than {MAX_DEPTH} levels deep"
            )
            return True
        self.layers.append(str(path))
        if self._is_profiled(data):
            self._merge_profiles(data, str(path))
        else:
            self.merge(data, str(path))
        return True

    def _is_profiled(self, data: dict[str, Any]) -> bool:
        return any(
            isinstance(data.get(name), dict) and child_type(self.root, name) is None
            for name in PROFILES
        )

    def _merge_profiles(self, data: dict[str, Any], source: str) -> None:
        for name in PROFILES:
            table = data.get(name, {})
            if isinstance(table, dict):
                self.merge(table, source)
            else:
                self.problems.append(f"{source}: profile '{name}' must be a table")
        for name in data.keys() - set(PROFILES):
            self.warnings.append(
                f"{source}: profile '{name}' is not selected (only 'default' and 'global' are "
                "read); its keys are ignored"
            )

    def merge(self, data: dict[str, Any], source: str, prefix: list[str] | None = None) -> None:
        """Merge a nested dict from `source` at `prefix`."""
        self._built = None  # the tree changes: convert it again
        prefix = prefix or []
        parent_type = self.type_at(prefix)
        for key, value in data.items():
            path = [*prefix, key]
            key_type = child_type(parent_type, key)
            if key_type is None:
                dotted = ".".join(path)
                self.problems.append(f"{source}: unknown key '{dotted}'{suggest(key, parent_type)}")
                continue
            if is_table(key_type) and isinstance(value, dict):
                self._table_at(path)
                self.merge(value, source, path)
            else:
                self._set(path, value, source)

    def set_text(self, dotted: str, text: str, source: str) -> None:
        """Set one key from text (environment or `--set`), typed by the schema."""
        path = [p for p in dotted.split(".") if p]
        key_type = self.type_at(path) if path else None
        if key_type is None:
            parent = self.type_at(path[:-1]) if len(path) > 1 else self.root
            hint = suggest(path[-1], parent) if path and parent is not None else ""
            self.problems.append(f"{source}: unknown key '{dotted}'{hint}")
            return
        try:
            value = coerce_text(text, key_type)
        except CoerceError as exc:
            self.problems.append(f"{source}: key '{dotted}': {exc}")
            return
        except RecursionError:
            self.problems.append(f"{source}: key '{dotted}': nested too deeply to read")
            return
        if too_deep(value) is not None:
            self.problems.append(
                f"{source}: key '{dotted}': nested more than {MAX_DEPTH} levels deep"
            )
            return
        for parent_len in range(1, len(path)):
            self._table_at(path[:parent_len])
        self._set(path, value, source)

    def _table_at(self, path: list[str]) -> dict[str, Any]:
        node = self.tree
        for depth, key in enumerate(path, start=1):
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
                self.sources.pop(".".join(path[:depth]), None)
            node = child
        return node

    def _set(self, path: list[str], value: Any, source: str) -> None:
        self._built = None  # the tree changes: convert it again
        node = self._table_at(path[:-1])
        node[path[-1]] = value
        dotted = ".".join(path)
        for key in [k for k in self.sources if k.startswith(dotted + ".")]:
            del self.sources[key]
        self._mark(value, path, source)

    def source_of(self, dotted: str) -> str:
        """The layer that set `dotted`, else one of its keys, else its nearest ancestor."""
        children = [v for k, v in self.sources.items() if k.startswith(dotted + ".")]
        if dotted not in self.sources and children:
            non_default = [c for c in children if c != "default"]
            return (non_default or children)[-1]
        path = dotted.split(".")
        while path:
            found = self.sources.get(".".join(path))
            if found:
                return found
            path.pop()
        return "default"

    def validate_tree(self) -> None:
        """Check every value against its type; append one problem per bad key.

        The whole tree is converted first (one call into msgspec's C code, kept for
        `build`); only when that fails is it walked key by key to name each bad one, which
        finds exactly what the conversion refused: each key is converted to the same type.
        """
        try:
            self._built = msgspec.convert(self.tree, self.root)
            return
        except msgspec.ValidationError as exc:
            refused = str(exc)
        before = len(self.problems)
        self._validate(self.tree, self.root, [])
        if len(self.problems) == before:  # never expected: still refuse, with msgspec's words
            self.problems.append(f"{self.source_of('')}: {refused}")

    def _validate(self, value: Any, tp: Any, path: list[str]) -> None:
        base = unwrap(tp)
        if value is None and is_optional(tp):
            return
        dotted = ".".join(path)
        if is_struct(base) and isinstance(value, dict):
            for name in required_fields(base):
                if name not in value:
                    key = f"{dotted}.{name}" if dotted else name
                    self.problems.append(
                        f"{self.source_of(dotted)}: missing required key '{key}' "
                        f"(expected {describe(struct_fields(base)[name])})"
                    )
            for key, child in value.items():
                self._validate(child, struct_fields(base)[key], [*path, key])
            return
        value_type = mapping_value_type(base)
        if value_type is not None and is_table(value_type) and isinstance(value, dict):
            for key, child in value.items():
                self._validate(child, value_type, [*path, key])
            return
        try:
            msgspec.convert(value, tp)
        except msgspec.ValidationError:
            self.problems.append(
                f"{self.source_of(dotted)}: key '{dotted}': expected {describe(tp)}, got {value!r}"
            )

    def build(self) -> msgspec.Struct:
        """Convert the tree to the root Struct; call only when there are no problems."""
        if self._built is None:
            self._built = msgspec.convert(self.tree, self.root)
        return self._built


MAX_DEPTH = 32
"""No configuration value nests deeper than this; deeper input is refused, not recursed."""


def too_deep(data: Any, limit: int = MAX_DEPTH) -> str | None:
    """The dotted path of the first value nested deeper than `limit`, or None (iterative)."""
    for path, depth in _walk(data):
        if depth > limit:
            return path
    return None


def _walk(data: Any) -> Iterator[tuple[str, int]]:
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        yield path, depth
        if isinstance(value, dict):
            stack += [(v, f"{path}.{k}" if path else str(k), depth + 1) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
