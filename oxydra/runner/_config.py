"""Which runner.toml, which user, which tier: the runner's inputs, resolved once.

Config file: `-c PATH`, else `./.oxydra/runner.toml`, else `~/.oxydra/runner.toml` (as the
Rust runner), else a built-in default so the quick start needs no file: workspace root
`~/.oxydra/workspaces`, user `default`, and the tier chosen by `--insecure` (without a
runner.toml there is no sandbox configured, so anything but `--insecure` is refused when a
guest is launched).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from oxydra.config.loader import load_toml_struct
from oxydra.config.runner_schema import RunnerConfig, UserConfig
from oxydra.config.workspace import check_user_id
from oxydra.core.errors import ConfigError, RunnerError
from oxydra.core.tiers import SandboxTier
from oxydra.runner._selfcmd import shown_command

if TYPE_CHECKING:
    from oxydra.runner._workspace import UserWorkspace

DEFAULT_USER = "default"


@dataclass(frozen=True)
class RunnerContext:
    """Everything the runner decided from its flags and files.

    Attributes:
        config_path: the runner.toml read, or None for the built-in default.
        base_dir: where relative paths in runner.toml resolve (its directory).
        user_root: `<workspace_root>/<user_id>`, not yet provisioned.
        extra_env: `-e` / `--env-file` entries (CLI wins over file).
        overrides: `--set` items forwarded to the guest's config loader.
        user_file: the user's `users/<id>.toml`, or None when none is configured.
    """

    config: RunnerConfig
    config_path: Path | None
    base_dir: Path
    user_id: str
    user: UserConfig
    tier: SandboxTier
    user_root: Path
    insecure: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    user_file: Path | None = None

    def require_launchable(self) -> None:
        """Refuse to launch when no runner.toml chose a sandbox and --insecure was not given."""
        if self.config_path is None and not self.insecure:
            raise RunnerError(
                "no runner.toml found (looked in ./.oxydra/runner.toml and "
                "~/.oxydra/runner.toml), so no sandbox is configured",
                hint=f"`{shown_command('runner', '--insecure', 'start')}` runs the guest as a "
                "local process; or write .oxydra/runner.toml with default_tier = 'container' "
                "or 'micro_vm' (docs/runner.md)",
            )

    def provision(self) -> UserWorkspace:
        """The user's workspace, provisioned with the user's `[mounts]` (checked first)."""
        from oxydra.runner._workspace import provision

        source = str(self.user_file or "users/<id>.toml")
        return provision(self.user_root, self.user.mounts, source=source)


def find_config(explicit: str | None, cwd: Path, home: Path) -> Path | None:
    """The runner.toml to read; an explicit path must exist."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise RunnerError(f"runner config {path} does not exist")
        return path.resolve()
    for candidate in (cwd / ".oxydra" / "runner.toml", home / ".oxydra" / "runner.toml"):
        if candidate.is_file():
            return candidate.resolve()
    return None


def validate_user_id(user_id: str) -> str:
    """A user id usable as one directory name (the Rust rules, then ours)."""
    if not user_id or "/" in user_id or "\\" in user_id or ".." in user_id:
        raise RunnerError(f"invalid user id {user_id!r}: it may not contain '/', '\\' or '..'")
    try:
        return check_user_id(user_id)
    except ConfigError as exc:
        raise RunnerError(str(exc)) from exc


def pick_user(config: RunnerConfig, explicit: str | None, config_path: Path | None) -> str:
    """`-u`, else the only configured user, else `default` when none is configured."""
    if explicit is not None:
        user = validate_user_id(explicit)
        if config.users and user not in config.users:
            known = ", ".join(sorted(config.users))
            raise RunnerError(f"user '{user}' is not configured in {config_path} (known: {known})")
        return user
    if len(config.users) == 1:
        return validate_user_id(next(iter(config.users)))
    if config.users:
        known = ", ".join(sorted(config.users))
        raise RunnerError(f"several users are configured ({known}); choose one with --user")
    return DEFAULT_USER


def resolve_tier(config: RunnerConfig, user: UserConfig, insecure: bool) -> SandboxTier:
    """`--insecure` → process; else the user's `behavior.sandbox_tier`; else `default_tier`."""
    if insecure:
        return SandboxTier.PROCESS
    return user.behavior.sandbox_tier or config.default_tier


def parse_env_entries(entries: Sequence[str], source: str) -> dict[str, str]:
    """`KEY=VALUE` entries; an entry without `=` or with an empty key is an error."""
    env: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise RunnerError(f"{source}: expected KEY=VALUE, got {entry!r}")
        env[key.strip()] = value
    return env


def read_env_file(path: str) -> dict[str, str]:
    """`KEY=VALUE` per line; `#` comments and blank lines are skipped."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise RunnerError(f"cannot read env file {path}: {exc.strerror}") from exc
    lines = [ln.strip() for ln in text.splitlines()]
    return parse_env_entries([ln for ln in lines if ln and not ln.startswith("#")], path)


def load_context(
    *,
    config: str | None = None,
    user: str | None = None,
    insecure: bool = False,
    env: Sequence[str] = (),
    env_file: str | None = None,
    overrides: Sequence[str] = (),
    cwd: Path | None = None,
    home: Path | None = None,
) -> RunnerContext:
    """Read runner.toml and the user's file and decide user, tier and workspace."""
    cwd = cwd or Path.cwd()
    home = home or Path.home()
    path = find_config(config, cwd, home)
    runner = _load(path, RunnerConfig) if path else RunnerConfig(workspace_root="")
    base = path.parent if path else home / ".oxydra"
    user_id = pick_user(runner, user, path)
    entry = runner.users.get(user_id)
    user_path = _under(base, entry.config_path) if entry else None
    user_cfg = _load(user_path, UserConfig) if user_path else UserConfig()
    assert isinstance(user_cfg, UserConfig)
    _check_people(user_id, user_cfg, str(user_path or "users/<id>.toml"))
    root_text = runner.workspace_root or str(home / ".oxydra" / "workspaces")
    extra = read_env_file(env_file) if env_file else {}
    extra.update(parse_env_entries(env, "-e"))
    return RunnerContext(
        config=runner,
        config_path=path,
        base_dir=base,
        user_id=user_id,
        user=user_cfg,
        tier=resolve_tier(runner, user_cfg, insecure),
        user_root=_under(base, root_text) / user_id,
        insecure=insecure,
        extra_env=extra,
        overrides=tuple(overrides),
        user_file=user_path,
    )


def _check_people(user_id: str, user: UserConfig, source: str) -> None:
    """Refuse a people or Telegram config that cannot work, before anything starts."""
    from oxydra.config.people import check_telegram, people_from

    try:
        people_from(user_id, user, source)
        check_telegram(user, source)
    except ConfigError as exc:
        raise RunnerError(str(exc)) from exc


def _under(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


_Loaded = TypeVar("_Loaded", RunnerConfig, UserConfig)


def _load(path: Path, root: type[_Loaded]) -> _Loaded:
    try:
        loaded = load_toml_struct(path, root)
    except ConfigError as exc:
        raise RunnerError(str(exc)) from exc
    assert isinstance(loaded, root)
    return loaded
