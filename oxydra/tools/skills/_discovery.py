"""Find skills in their sources, hash them, and decide which copy of each name is in force.

Theory of operation:
1. Sources, lowest precedence first: built-in (package data), `/etc/oxydra/skills`,
   `~/.config/oxydra/skills`, `~/.oxydra/skills`, `./.oxydra/skills`, then the user's managed
   folder `<workspace>/skills/`. A later source wins for the same name.
2. In a source, a skill is a folder holding `SKILL.md` (with optional `scripts/`,
   `references/`, `assets/`), or a bare `NAME.md` file (the Rust version's short form).
3. A skill's hash is sha256 over every file of its folder (relative path and bytes, sorted),
   so a changed script changes the hash as much as a changed SKILL.md.
4. Config-layer and built-in skills are installed by the operator and trusted as found. In
   the managed folder, which the model's drafts are promoted into, a skill is usable only
   when its hash equals the one pinned by `oxydra skills approve` (kept in the workspace's
   `.oxydra/skills-approved.json`, out of the agent's reach); a changed file makes it
   `changed` and unusable until re-approved. Drafts (`skills/.drafts/NAME/`) are never usable.
5. A config-layer directory inside the workspace's `shared` or `tmp` (the operator ran
   Oxydra from there) is skipped: the agent could write its skills.
6. Only usable skills take part in precedence: an unapproved managed copy does not hide an
   operator's skill of the same name.
7. The built-in skills are also kept parsed in `builtin.json` beside them, so a start needs
   neither PyYAML nor a parse: each entry is used only when its folder still hashes to the
   recorded sha256, else the folder is read as any other (`write_builtin_cache` renews the
   file; a test checks it is current).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from importlib import resources
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

import msgspec

from oxydra.config.persona import operator_only
from oxydra.core.log import get_logger
from oxydra.tools.skills._manifest import (
    Manifest,
    SkillError,
    load_yaml,
    parse_manifest,
    split_front_matter,
)

MAX_FILES = 200
MAX_SKILL_BYTES = 4 << 20
APPROVALS = "skills-approved.json"
DRAFTS = ".drafts"
Status = Literal["active", "inactive", "draft", "unapproved", "changed", "invalid"]
_log = get_logger(__name__)
_NETWORK = re.compile(r"https?://|\b(?:curl|wget|nc|ssh|scp|rsync)\b")
_ENV_REF = re.compile(
    r"\$\{?([A-Z_][A-Z0-9_]{0,63})|\{\{([A-Z_][A-Z0-9_]{0,63})\}\}"
    r"|(?:environ\.get\(|environ\[|getenv\()\s*[\"']([A-Z_][A-Z0-9_]{0,63})"
)


class Flags(msgspec.Struct, frozen=True, kw_only=True):
    """What a reviewer should look at before trusting a skill."""

    scripts: tuple[str, ...] = ()
    network: bool = False
    env_vars: tuple[str, ...] = ()


class Skill(msgspec.Struct, frozen=True, kw_only=True):
    """One skill as found in one source.

    Attributes:
        source: the source's label (`builtin`, a directory, or `managed`).
        location: the SKILL.md (or bare .md) it was read from.
        files: paths under the skill's folder, relative, sorted (empty for a bare file).
        status: rule 4's verdict; the registry later turns `active` into `inactive` when
            activation conditions are not met.
    """

    manifest: Manifest
    body: str
    source: str
    location: str
    sha256: str
    files: tuple[str, ...] = ()
    status: Status = "active"
    reason: str = ""
    warnings: tuple[str, ...] = ()
    flags: Flags = Flags()

    @property
    def name(self) -> str:
        """The skill's name from its front matter."""
        return self.manifest.name


class Source(msgspec.Struct, frozen=True, kw_only=True):
    """A place skills are read from."""

    label: str
    root: str
    managed: bool = False


def skill_sources(
    workspace: Path | None = None,
    *,
    cwd: Path | None = None,
    home: Path | None = None,
    system_dir: Path = Path("/etc/oxydra"),
) -> list[Source]:
    """Rule 1's sources that are directories on disk (the built-in one is implicit)."""
    home = home or Path.home()
    dirs = [
        system_dir / "skills",
        home / ".config" / "oxydra" / "skills",
        home / ".oxydra" / "skills",
        (cwd or Path.cwd()) / ".oxydra" / "skills",
    ]
    unique = operator_only(list(dict.fromkeys(d.resolve() for d in dirs)), workspace)
    found = [Source(label=str(d), root=str(d)) for d in unique]
    if workspace is not None:
        found.append(Source(label="managed", root=str(workspace / "skills"), managed=True))
    return found


def builtin_root() -> Traversable:
    """The built-in skills shipped as package data (readable from inside the zipapp)."""
    return files("oxydra.tools.skills").joinpath("builtin")


BUILTIN_CACHE = "builtin.json"
_skills_json = msgspec.json.Decoder(list[Skill])


def builtin_skills() -> list[Skill]:
    """The built-in skills, from `builtin.json` where it matches the files (rule 7)."""
    package = files("oxydra.tools.skills")
    try:
        cached = {
            s.location: s for s in _skills_json.decode(package.joinpath(BUILTIN_CACHE).read_bytes())
        }
    except (OSError, msgspec.DecodeError):
        cached = {}
    root = package.joinpath("builtin")
    entries = _entries(root)
    found = []
    for entry in entries:
        hit = cached.get(f"builtin:{entry.name}")
        if hit is not None and entry.is_dir():
            try:
                current = _hash(entry, _files(entry))
            except (SkillError, OSError):
                current = None
            if current == hit.sha256:
                found.append(hit)
                continue
        found += _scan_entries([entry], "builtin", {}, managed=False)
    return found


def write_builtin_cache() -> Path:
    """Renew `builtin.json` from the built-in folders (run after changing one)."""
    skills = _scan(builtin_root(), "builtin", {}, managed=False)
    path = Path(str(resources.files("oxydra.tools.skills").joinpath(BUILTIN_CACHE)))
    path.write_bytes(msgspec.json.format(msgspec.json.encode(skills)) + b"\n")
    return path


def discover(sources: list[Source], *, workspace: Path | None = None) -> list[Skill]:
    """Every skill of every source, built-in first, in precedence order (rule 1)."""
    pins = read_approvals(workspace) if workspace is not None else {}
    found = list(_builtin_skills())
    for source in sources:
        if os.path.isdir(source.root):  # most sources do not exist: no Path built for them
            root = Path(source.root)
            found += _scan(root, source.label, pins, managed=source.managed)
            if source.managed:
                found += _scan_drafts(root / DRAFTS)
    return found


@functools.cache
def _builtin_skills() -> tuple[Skill, ...]:
    """The shipped skills, read once per process: package data does not change under us."""
    return tuple(builtin_skills())


def in_force(skills: list[Skill]) -> dict[str, Skill]:
    """Rule 6: the winning usable copy of each name."""
    winners: dict[str, Skill] = {}
    for skill in skills:
        if skill.status == "active":
            winners[skill.name] = skill
    return winners


def read_approvals(workspace: Path) -> dict[str, str]:
    """The pinned hashes of the managed folder's skills."""
    path = workspace / ".oxydra" / APPROVALS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        _log.warning("ignoring unreadable %s: %s", path, exc)
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def write_approvals(workspace: Path, pins: dict[str, str]) -> None:
    """Store pinned hashes (an operator action; the agent has no path to this file)."""
    path = workspace / ".oxydra" / APPROVALS
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(sorted(pins.items())), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def load_skill(entry: Traversable, source: str) -> Skill:
    """Read one skill folder or bare file (rule 2) and hash it (rule 3)."""
    if entry.is_dir():
        manifest_file = entry.joinpath("SKILL.md")
        files = _files(entry)
        digest = _hash(entry, files)
    else:
        manifest_file, files = entry, ()
        digest = hashlib.sha256(entry.read_bytes()).hexdigest()
    origin = f"{source}:{entry.name}" if source == "builtin" else str(manifest_file)
    text = manifest_file.read_bytes().decode("utf-8", errors="replace")
    head, body = split_front_matter(text, origin)
    manifest, warnings = parse_manifest(load_yaml(head, origin), origin)
    if entry.is_dir() and manifest.name != entry.name:
        warnings.append(f"{origin}: name {manifest.name!r} differs from its folder {entry.name!r}")
    return Skill(
        manifest=manifest,
        body=body,
        source=source,
        location=origin,
        sha256=digest,
        files=files,
        warnings=tuple(warnings),
        flags=_flags(entry, files, body, manifest),
    )


def _entries(root: Traversable) -> list[Traversable]:
    """The skill folders and bare files of a source (rule 2), by name."""
    found = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name) if root.is_dir() else []:
        if entry.name.startswith("."):
            continue
        is_folder = entry.is_dir() and entry.joinpath("SKILL.md").is_file()
        if is_folder or (entry.is_file() and entry.name.lower().endswith(".md")):
            found.append(entry)
    return found


def _scan(root: Traversable, label: str, pins: dict[str, str], *, managed: bool) -> list[Skill]:
    return _scan_entries(_entries(root), label, pins, managed=managed)


def _scan_entries(
    entries: list[Traversable], label: str, pins: dict[str, str], *, managed: bool
) -> list[Skill]:
    found = []
    for entry in entries:
        try:
            skill = load_skill(entry, label)
        except (SkillError, OSError, UnicodeError) as exc:
            _log.warning("skipping skill %s: %s", entry.name, exc)
            found.append(_invalid(entry.name, label, str(exc)))
            continue
        if managed:
            skill = _pinned(skill, pins.get(skill.name))
        found.append(skill)
    return found


def _scan_drafts(root: Path) -> list[Skill]:
    drafts = []
    for skill in _scan(root, "draft", {}, managed=False):
        if skill.status != "invalid":
            skill = msgspec.structs.replace(skill, status="draft", reason="awaiting approval")
        drafts.append(skill)
    return drafts


def _pinned(skill: Skill, pin: str | None) -> Skill:
    if pin is None:
        return msgspec.structs.replace(skill, status="unapproved", reason="never approved")
    if pin != skill.sha256:
        _log.warning("skill %s changed since it was approved; inactive", skill.name)
        reason = f"changed since approval (pinned {pin[:12]})"
        return msgspec.structs.replace(skill, status="changed", reason=reason)
    return skill


def _invalid(name: str, source: str, reason: str) -> Skill:
    manifest = Manifest(name=name, description="")
    return Skill(
        manifest=manifest,
        body="",
        source=source,
        location=name,
        sha256="",
        status="invalid",
        reason=reason,
    )


def _files(folder: Traversable, prefix: str = "") -> tuple[str, ...]:
    out: list[str] = []
    stack = [(folder, prefix)]
    while stack:
        node, rel = stack.pop()
        for child in node.iterdir():
            path = f"{rel}{child.name}"
            if isinstance(child, Path) and child.is_symlink():
                raise SkillError(f"{child}: symbolic links are not allowed in a skill")
            if child.is_dir():
                stack.append((child, path + "/"))
            else:
                out.append(path)
            if len(out) > MAX_FILES:
                raise SkillError(f"{folder}: more than {MAX_FILES} files")
    return tuple(sorted(out))


def _hash(folder: Traversable, files: tuple[str, ...]) -> str:
    digest, total = hashlib.sha256(), 0
    for rel in files:
        data = folder.joinpath(*rel.split("/")).read_bytes()
        total += len(data)
        if total > MAX_SKILL_BYTES:
            raise SkillError(f"{folder}: larger than {MAX_SKILL_BYTES} bytes")
        digest.update(rel.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def _flags(entry: Traversable, files: tuple[str, ...], body: str, manifest: Manifest) -> Flags:
    scripts = tuple(f for f in files if f.startswith("scripts/"))
    texts = [body] + [
        entry.joinpath(*f.split("/")).read_bytes().decode("utf-8", "replace") for f in scripts
    ]
    env = set(manifest.env)
    for value in manifest.metadata.values():  # OpenClaw / nanobot: metadata.X.requires.env
        requires = value.get("requires") if isinstance(value, dict) else None
        if isinstance(requires, dict) and isinstance(requires.get("env"), list):
            env.update(str(v) for v in requires["env"])
    for text in texts:
        env.update(next(g for g in groups if g) for groups in _ENV_REF.findall(text))
    network = any(_NETWORK.search(t) for t in texts)
    return Flags(scripts=scripts, network=network, env_vars=tuple(sorted(env)))


def approve(workspace: Path, name: str) -> Skill:
    """Operator action: promote a draft (or accept a changed managed skill) and pin its hash.

    A draft replaces the managed skill of the same name; the old folder is kept beside it
    as `.NAME.previous` so the change can be undone by hand.
    """
    managed = workspace / "skills"
    draft, target = managed / DRAFTS / name, managed / name
    if draft.is_dir():
        load_skill(draft, "draft")  # refuse a broken draft before moving anything
        if target.exists():
            backup = managed / f".{name}.previous"
            if backup.exists():
                import shutil

                shutil.rmtree(backup)
            target.replace(backup)
        draft.replace(target)
    elif not target.is_dir():
        raise SkillError(f"no draft or managed skill named {name!r} in {managed}")
    skill = load_skill(target, "managed")
    if skill.name != name:
        raise SkillError(f"{target}: front matter names {skill.name!r}, not {name!r}")
    pins = read_approvals(workspace)
    pins[name] = skill.sha256
    write_approvals(workspace, pins)
    _log.warning(
        "skill approved",
        extra={"oxy": {"audit": "skill_approve", "skill": name, "sha256": skill.sha256}},
    )
    return skill
