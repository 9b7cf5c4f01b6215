"""Config files the configurator edits: read masked, patch, validate, write with a backup.

Theory of operation:
1. A file is read with `tomllib` into a tree; what is sent out has every secret value
   replaced by `MASK` (the same rule as `config show`), so no credential reaches a browser.
2. An edit is a JSON merge patch (RFC 7396: objects merge, `null` removes a key). A secret
   sent back as `MASK` means "unchanged" and keeps the stored value, so a form can round-trip
   a masked value; any other value replaces it.
3. The patched tree is checked by the loader's own `Layers` against the file's schema, so
   the errors are the loader's, each with the dotted key it is about; an agent config is
   also checked as the loader would see it, merged with its other files (`check_agent`).
4. A valid result is written atomically (temp file, fsync, rename) after the previous file
   is copied to `<name>.bak-<UTC time>`; the answer carries a unified diff with secrets masked.
"""

from __future__ import annotations

import datetime
import difflib
import os
import re
import shutil
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from oxydra.config._layers import Layers
from oxydra.config.show import MASK, is_secret_key
from oxydra.web import _toml

_KEY_IN_PROBLEM = re.compile(r"key '([^']{1,300})'")


@dataclass
class Outcome:
    """What an edit did, or why it was refused."""

    errors: list[dict[str, str]] = field(default_factory=list)
    diff: str = ""
    backup: str | None = None
    written: bool = False


def read_tree(path: Path) -> dict[str, Any]:
    """The file's TOML tree ({} when it does not exist)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def masked(tree: Any, prefix: str = "") -> Any:
    """A copy of `tree` with every secret value replaced by `MASK`."""
    if isinstance(tree, dict):
        return {
            k: masked(v, f"{prefix}{k}" if not prefix else f"{prefix}.{k}") for k, v in tree.items()
        }
    if isinstance(tree, list):
        return [masked(v, prefix) for v in tree]
    return MASK if tree not in (None, "") and is_secret_key(prefix) else tree


def merge_patch(tree: Any, patch: Any, prefix: str = "") -> Any:
    """RFC 7396 merge of `patch` into `tree`; a `MASK` secret keeps the current value."""
    if not isinstance(patch, dict):
        if patch == MASK and is_secret_key(prefix):
            return tree
        return patch
    result = dict(tree) if isinstance(tree, dict) else {}
    for k, v in patch.items():
        dotted = f"{prefix}.{k}" if prefix else k
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v, dotted)
    return result


def check(tree: dict[str, Any], schema: type[msgspec.Struct], source: str) -> list[dict[str, str]]:
    """The loader's problems with `tree` as a `schema` file, each with its dotted key."""
    layers = Layers(schema)
    layers.merge(tree, source)
    layers.validate_tree()
    return _errors(layers.problems)


def check_agent(
    tree: dict[str, Any], path: Path, cwd: Path, home: Path | None = None
) -> list[dict[str, str]]:
    """The loader's problems with the effective agent config if `path` held `tree`.

    Every layer the guest's loader reads (system, home, `cwd/.oxydra`, environment) is merged
    as it would be, with the edited file's tree in its place, then the cross-key checks run:
    a selection naming a provider defined in another file is fine, as at start-up.
    """
    from oxydra.config.loader import FILE_NAMES, ConfigSources
    from oxydra.config.schema import AgentConfig
    from oxydra.config.validate import check_agent_config

    sources = ConfigSources(cwd=cwd, home=home)
    layers = Layers(AgentConfig)
    merged = False
    for directory in sources.directories():
        for name in FILE_NAMES:
            candidate = directory / name
            if candidate.resolve() == path.resolve():
                layers.layers.append(str(path))
                layers.merge(tree, str(path))
                merged = True
            else:
                layers.merge_file(candidate)
    if not merged:  # a file outside the loader's directories: checked as the top file layer
        layers.merge(tree, str(path))
    layers.validate_tree()
    if not layers.problems:
        built = layers.build()
        assert isinstance(built, AgentConfig)
        check_agent_config(built, layers)
    return _errors(layers.problems)


def _errors(problems: list[str]) -> list[dict[str, str]]:
    errors = []
    for problem in problems:
        found = _KEY_IN_PROBLEM.search(problem)
        errors.append({"field": found.group(1) if found else "", "message": problem})
    return errors


def edit(
    path: Path,
    patch: dict[str, Any],
    schema: type[msgspec.Struct],
    *,
    dry_run: bool,
    checker: Callable[[dict[str, Any]], list[dict[str, str]]] | None = None,
) -> Outcome:
    """Apply `patch` to the file; write it (with a backup) unless invalid or `dry_run`.

    `checker` adds checks beyond the file's own schema (the agent config's cross-key rules).
    """
    before = read_tree(path)
    after = merge_patch(before, patch)
    errors = check(after, schema, str(path))
    if not errors and checker is not None:
        errors = checker(after)
    if errors:
        return Outcome(errors=errors)
    old_text = _toml.dumps(masked(before)) if before else ""
    diff = "".join(
        difflib.unified_diff(
            old_text.splitlines(keepends=True),
            _toml.dumps(masked(after)).splitlines(keepends=True),
            f"{path.name} (before)",
            f"{path.name} (after)",
        )
    )
    if dry_run:
        return Outcome(diff=diff)
    backup = _backup(path)
    write_atomic(path, _toml.dumps(after))
    return Outcome(diff=diff, backup=str(backup) if backup else None, written=True)


def _backup(path: Path) -> Path | None:
    if not path.exists():
        return None
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    backup = path.with_name(f"{path.name}.bak-{stamp}")
    shutil.copy2(path, backup)
    return backup


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` in one step: a reader sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
