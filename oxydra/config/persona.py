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
    layers = _layers(workspace, cwd, home, system_dir)
    return [Path(d) for d in _operator_only(_unique_real(layers), workspace)]


def _layers(
    workspace: Path | None, cwd: Path | None, home: Path | None, system_dir: Path
) -> list[str]:
    """Every layer, lowest precedence first, as plain strings (a session start reads them:
    pathlib's objects cost more there than the syscalls)."""
    home_dir = os.fspath(home) if home is not None else os.path.expanduser("~")
    layers = [
        os.fspath(system_dir),
        os.path.join(home_dir, ".config", "oxydra"),
        os.path.join(home_dir, ".oxydra"),
        os.path.join(os.fspath(cwd) if cwd is not None else os.getcwd(), ".oxydra"),
    ]
    if workspace is not None:
        layers.append(os.path.join(workspace, ".oxydra"))
    return layers


def _unique_real(dirs: list[str]) -> list[str]:
    return list(dict.fromkeys(os.path.realpath(d) for d in dirs))  # `~` may be the cwd


def operator_only(dirs: list[Path], workspace: Path | None) -> list[Path]:
    """Rule 4: `dirs` (resolved) without those the agent can write to."""
    kept = set(_operator_only([str(d) for d in dirs], workspace))
    return [d for d in dirs if str(d) in kept]


def _operator_only(dirs: list[str], workspace: Path | None) -> list[str]:
    if workspace is None:
        return dirs
    writable = [os.path.realpath(os.path.join(workspace, name)) for name in AGENT_WRITABLE]
    kept = []
    for d in dirs:  # resolved paths: "under w" is "starts with w and a separator"
        if any(d == w or d.startswith(w + os.sep) for w in writable):
            _log.warning("ignoring %s: the agent can write there, so it is no operator layer", d)
            continue
        kept.append(d)
    return kept


def read_persona_file(
    name: str, dirs: list[Path], *, budget: int = PERSONA_BUDGET_BYTES
) -> PersonaFile | None:
    """The winning copy of `name` across `dirs` (later wins), or None."""
    return _read_file(name, [os.fspath(d) for d in dirs], budget)


def _read_file(name: str, dirs: list[str], budget: int) -> PersonaFile | None:
    found = [path for path in (os.path.join(d, name) for d in dirs) if os.path.isfile(path)]
    if not found:
        return None
    path = found[-1]
    with open(path, "rb") as file:
        data = file.read()
    text = data[:budget].decode("utf-8", errors="ignore").strip()
    if len(data) > budget:
        text += CUT_MARKER.format(size=len(data), budget=budget)
    return PersonaFile(
        name=name,
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        text=text,
        truncated=len(data) > budget,
        shadowed=tuple(found[:-1]),
    )


def _session_layers(
    workspace: Path | None, cwd: Path | None, home: Path | None, system_dir: Path
) -> list[str]:
    """`persona_dirs` at a session start: only the layers that exist.

    A layer that does not exist holds no file, so it is not resolved (a few syscalls each,
    at every session start); one created later is seen by the next session.
    """
    existing = [d for d in _layers(workspace, cwd, home, system_dir) if os.path.isdir(d)]
    return _operator_only(_unique_real(existing), workspace)


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
    dirs = _session_layers(workspace, cwd, home, system_dir)
    soul = _read_file("SOUL.md", dirs, budget)
    if soul_file is not None:
        soul = read_persona_file(soul_file.name, [soul_file.parent], budget=budget)
        if soul is None:
            raise ConfigError(f"soul_file {soul_file} does not exist")
    return Persona(
        soul=soul,
        system=_read_file("SYSTEM.md", dirs, budget),
        user=_read_file("USER.md", dirs, budget),
    )
