"""Which runner.toml, user and tier the runner picks; `-e` / `--env-file` parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxydra.core.errors import RunnerError
from oxydra.core.tiers import SandboxTier
from oxydra.runner._config import load_context, parse_env_entries, read_env_file


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    return cwd, home


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class TestConfigFile:
    def test_without_any_file_the_built_in_default_needs_no_setup(self, dirs: tuple) -> None:
        cwd, home = dirs
        ctx = load_context(cwd=cwd, home=home, insecure=True)
        assert ctx.config_path is None
        assert ctx.user_id == "default"
        assert ctx.tier == SandboxTier.PROCESS
        assert ctx.user_root == home / ".oxydra" / "workspaces" / "default"
        ctx.require_launchable()

    def test_without_any_file_a_launch_needs_insecure(self, dirs: tuple) -> None:
        cwd, home = dirs
        with pytest.raises(RunnerError, match="--insecure"):
            load_context(cwd=cwd, home=home).require_launchable()

    def test_the_project_file_wins_over_the_home_file(self, dirs: tuple) -> None:
        cwd, home = dirs
        write(home / ".oxydra" / "runner.toml", 'workspace_root = "/home-root"\n')
        project = write(cwd / ".oxydra" / "runner.toml", 'workspace_root = "ws"\n')
        ctx = load_context(cwd=cwd, home=home)
        assert ctx.config_path == project.resolve()
        assert ctx.user_root == project.resolve().parent / "ws" / "default"

    def test_the_home_file_is_the_fallback(self, dirs: tuple) -> None:
        cwd, home = dirs
        write(home / ".oxydra" / "runner.toml", 'workspace_root = "/srv/ws"\n')
        assert load_context(cwd=cwd, home=home).user_root == Path("/srv/ws/default")

    def test_an_explicit_missing_file_is_an_error(self, dirs: tuple) -> None:
        cwd, home = dirs
        with pytest.raises(RunnerError, match="does not exist"):
            load_context(config=str(cwd / "nope.toml"), cwd=cwd, home=home)

    def test_unknown_keys_are_errors_naming_the_file(self, dirs: tuple) -> None:
        cwd, home = dirs
        path = write(cwd / "r.toml", "workspace_rot = 'x'\n")
        with pytest.raises(RunnerError, match=r"r\.toml"):
            load_context(config=str(path), cwd=cwd, home=home)


class TestUsers:
    def test_the_only_configured_user_is_picked_and_its_file_read(self, dirs: tuple) -> None:
        cwd, home = dirs
        runner = write(
            cwd / "r.toml",
            '[users.alice]\nconfig_path = "users/alice.toml"\n',
        )
        write(
            cwd / "users" / "alice.toml",
            '[resources]\nmax_processes = 64\n[behavior]\nsandbox_tier = "container"\n',
        )
        ctx = load_context(config=str(runner), cwd=cwd, home=home)
        assert ctx.user_id == "alice"
        assert ctx.user.resources.max_processes == 64
        assert ctx.tier == SandboxTier.CONTAINER

    def test_insecure_forces_the_process_tier(self, dirs: tuple) -> None:
        cwd, home = dirs
        runner = write(cwd / "r.toml", 'default_tier = "container"\n')
        ctx = load_context(config=str(runner), cwd=cwd, home=home, insecure=True)
        assert ctx.tier == SandboxTier.PROCESS

    def test_several_users_need_a_choice(self, dirs: tuple) -> None:
        cwd, home = dirs
        text = '[users.a]\nconfig_path = "a.toml"\n[users.b]\nconfig_path = "b.toml"\n'
        runner = write(cwd / "r.toml", text)
        with pytest.raises(RunnerError, match="--user"):
            load_context(config=str(runner), cwd=cwd, home=home)

    def test_a_user_not_in_the_map_is_refused(self, dirs: tuple) -> None:
        cwd, home = dirs
        runner = write(cwd / "r.toml", '[users.a]\nconfig_path = "a.toml"\n')
        with pytest.raises(RunnerError, match="not configured"):
            load_context(config=str(runner), user="zed", cwd=cwd, home=home)

    @pytest.mark.parametrize("bad", ["../x", "a/b", "a\\b", "..", "", "a..b", "white space"])
    def test_user_ids_that_could_escape_the_workspace_root_are_refused(
        self, dirs: tuple, bad: str
    ) -> None:
        cwd, home = dirs
        with pytest.raises(RunnerError, match="invalid user id"):
            load_context(user=bad, cwd=cwd, home=home, insecure=True)


class TestEnvEntries:
    def test_cli_entries_win_over_the_file(self, dirs: tuple) -> None:
        cwd, home = dirs
        env_file = write(cwd / "env", "# comment\n\nA=file\nB=2\n")
        ctx = load_context(env=["A=cli"], env_file=str(env_file), cwd=cwd, home=home)
        assert ctx.extra_env == {"A": "cli", "B": "2"}

    @pytest.mark.parametrize("entry", ["NOEQUALS", "=value", " =x"])
    def test_entries_without_a_key_are_errors(self, entry: str) -> None:
        with pytest.raises(RunnerError, match="KEY=VALUE"):
            parse_env_entries([entry], "-e")

    def test_a_missing_env_file_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(RunnerError, match="cannot read env file"):
            read_env_file(str(tmp_path / "missing"))
