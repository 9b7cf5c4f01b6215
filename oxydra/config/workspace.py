"""Where a user's workspace is, when no runner handed us one.

Order: an explicit directory; else `<workspace_root>/<user>` from `runner.toml`
(`./.oxydra/runner.toml`, then `~/.oxydra/runner.toml`; a relative root is resolved against
the file's directory, as the Rust runner does); else `~/.oxydra/workspaces/<user>`.
"""

from __future__ import annotations

import re
from pathlib import Path

from oxydra.core.errors import ConfigError

_USER_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def check_user_id(user_id: str) -> str:
    """A user id safe to use as a directory name."""
    if not _USER_ID.match(user_id) or user_id in (".", ".."):
        raise ConfigError(
            f"invalid user id {user_id!r}: use 1-64 letters, digits, '_', '-', '.', '@'"
        )
    return user_id


def runner_config_path(cwd: Path | None = None, home: Path | None = None) -> Path | None:
    """The runner.toml in effect, if any."""
    for candidate in (
        (cwd or Path.cwd()) / ".oxydra" / "runner.toml",
        (home or Path.home()) / ".oxydra" / "runner.toml",
    ):
        if candidate.is_file():
            return candidate
    return None


def resolve_workspace(
    user_id: str, explicit: str | None = None, *, cwd: Path | None = None, home: Path | None = None
) -> Path:
    """The user's workspace directory (not created here)."""
    check_user_id(user_id)
    if explicit:
        return Path(explicit).expanduser().resolve()
    runner_file = runner_config_path(cwd, home)
    if runner_file is not None:
        from oxydra.config.loader import load_toml_struct
        from oxydra.config.runner_schema import RunnerConfig

        runner = load_toml_struct(runner_file, RunnerConfig)
        assert isinstance(runner, RunnerConfig)
        root = Path(runner.workspace_root).expanduser()
        if not root.is_absolute():
            root = runner_file.parent / root
        return (root / user_id).resolve()
    return ((home or Path.home()) / ".oxydra" / "workspaces" / user_id).resolve()


def ipc_dir(workspace: Path) -> Path:
    """The directory of endpoint markers, tokens and sockets inside a workspace."""
    return workspace / "ipc"
