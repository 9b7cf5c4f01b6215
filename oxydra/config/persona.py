"""The operator's persona files: `SOUL.md`, `SYSTEM.md` and `USER.md`.

Theory of operation:
1. Each file is looked up on its own in the config layers, lowest first: `/etc/oxydra`,
   `~/.config/oxydra`, `~/.oxydra`, `./.oxydra`, then the user's workspace `.oxydra/`
   (which no file-tool mount reaches). The last layer holding the file wins, as for config.
2. Files are read once, when a session's runtime is built; an operator's edit therefore
   applies from the next session, and a session keeps the hash it started with.
3. Each file is capped at `PERSONA_BUDGET_BYTES`; a longer one is cut at a UTF-8 boundary
   with a visible marker, never silently.
4. A layer inside the workspace's agent-writable areas (`shared`, `tmp`) is skipped with a
   warning: when the operator runs Oxydra from such a directory, its `./.oxydra/` would be
   a persona the agent could write.
5. The persona is operator text: it goes into the system prompt as-is, never wrapped as
   untrusted content, and the agent has no path to change it (the jail refuses writes to
   these names; the shell's sandbox does not reach the config layers or `.oxydra/`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import msgspec

from oxydra.core.errors import ConfigError

AGENT_WRITABLE = ("shared", "tmp")
_log = logging.getLogger(__name__)

PERSONA_FILES = ("SOUL.md", "SYSTEM.md", "USER.md")
PERSONA_BUDGET_BYTES = 20_000
CUT_MARKER = "\n...[truncated: {size} bytes, budget {budget}]"


class PersonaFile(msgspec.Struct, frozen=True, kw_only=True):
    """The winning copy of one persona file."""

    name: str
    path: str
    sha256: str
    size: int
    text: str
    truncated: bool
    shadowed: tuple[str, ...] = ()


class Persona(msgspec.Struct, frozen=True, kw_only=True):
    """The persona a session starts with; any file may be missing."""

    soul: PersonaFile | None = None
    system: PersonaFile | None = None
    user: PersonaFile | None = None

    def files(self) -> list[PersonaFile]:
        """The files found, in prompt order (SOUL, SYSTEM, USER)."""
        return [f for f in (self.soul, self.system, self.user) if f is not None]


def persona_dirs(
    workspace: Path | None = None,
    *,
    cwd: Path | None = None,
    home: Path | None = None,
    system_dir: Path = Path("/etc/oxydra"),
) -> list[Path]:
    """The directories searched, lowest precedence first."""
    return _resolved(_layers(workspace, cwd, home, system_dir), workspace)


def _layers(
    workspace: Path | None, cwd: Path | None, home: Path | None, system_dir: Path
) -> list[Path]:
    home = home or Path.home()
    dirs = [
        system_dir,
        home / ".config" / "oxydra",
        home / ".oxydra",
        (cwd or Path.cwd()) / ".oxydra",
    ]
    if workspace is not None:
        dirs.append(workspace / ".oxydra")
    return dirs


def _resolved(dirs: list[Path], workspace: Path | None) -> list[Path]:
    unique = list(dict.fromkeys(d.resolve() for d in dirs))  # `~` may be the cwd
    return operator_only(unique, workspace)


def operator_only(dirs: list[Path], workspace: Path | None) -> list[Path]:
    """Rule 4: `dirs` (resolved) without those the agent can write to."""
    if workspace is None:
        return dirs
    writable = [str((workspace / name).resolve()) for name in AGENT_WRITABLE]
    kept = []
    for d in dirs:
        text = str(d)  # resolved paths: "under w" is "starts with w and a separator"
        if any(text == w or text.startswith(w + os.sep) for w in writable):
            _log.warning("ignoring %s: the agent can write there, so it is no operator layer", d)
            continue
        kept.append(d)
    return kept


def read_persona_file(
    name: str, dirs: list[Path], *, budget: int = PERSONA_BUDGET_BYTES
) -> PersonaFile | None:
    """The winning copy of `name` across `dirs` (later wins), or None."""
    found = [d / name for d in dirs if (d / name).is_file()]
    if not found:
        return None
    path = found[-1]
    data = path.read_bytes()
    text = data[:budget].decode("utf-8", errors="ignore").strip()
    if len(data) > budget:
        text += CUT_MARKER.format(size=len(data), budget=budget)
    return PersonaFile(
        name=name,
        path=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        text=text,
        truncated=len(data) > budget,
        shadowed=tuple(str(p) for p in found[:-1]),
    )


def load_persona(
    workspace: Path | None = None,
    *,
    cwd: Path | None = None,
    home: Path | None = None,
    system_dir: Path = Path("/etc/oxydra"),
    soul_file: Path | None = None,
    budget: int = PERSONA_BUDGET_BYTES,
) -> Persona:
    """Read the persona for a new session.

    Args:
        workspace: the user's workspace; its `.oxydra/` is the last layer.
        soul_file: a specialist agent's own SOUL (`[agents.<name>] soul_file`), which
            replaces the layered one.
        budget: the per-file cap in bytes.
    """
    # Only a layer that exists can hold a file: the others are not resolved (a few syscalls
    # each, at every session start). One created later is seen by the next session.
    layers = [d for d in _layers(workspace, cwd, home, system_dir) if d.is_dir()]
    dirs = _resolved(layers, workspace)
    soul = read_persona_file("SOUL.md", dirs, budget=budget)
    if soul_file is not None:
        soul = read_persona_file(soul_file.name, [soul_file.parent], budget=budget)
        if soul is None:
            raise ConfigError(f"soul_file {soul_file} does not exist")
    return Persona(
        soul=soul,
        system=read_persona_file("SYSTEM.md", dirs, budget=budget),
        user=read_persona_file("USER.md", dirs, budget=budget),
    )
