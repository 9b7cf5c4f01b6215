"""The command line as a user runs it: real subprocesses, exit codes, messages."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oxydra import __version__
from oxydra.cli import MODES, _merge_runner_rest, build_parser


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {"HOME": str(cwd / "home"), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(
        [sys.executable, "-m", "oxydra", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    out = run(["--version"], tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == f"oxydra {__version__}"


def test_help_lists_every_mode(tmp_path: Path) -> None:
    out = run(["--help"], tmp_path)
    assert out.returncode == 0
    for mode in ("ask", "vm", "tui", "runner", "shell-daemon", "catalog", "config"):
        assert mode in out.stdout


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_mode_names_a_function_that_exists(mode: str) -> None:
    module_name, func_name, _ = MODES[mode]
    assert callable(getattr(importlib.import_module(module_name), func_name))


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys; from oxydra.cli import build_parser; build_parser().format_help();"
        "heavy = {'httpx','numpy','usearch','tiktoken','wasmtime','docker',"
        "'websockets','blessed','msgspec','asyncio'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_fits_columns_without_loading_shutil() -> None:
    """The help is as wide as `COLUMNS` says, and sizing it loads no shutil (nor the bz2 and
    lzma modules shutil imports)."""
    code = (
        "import sys; before = set(sys.modules); from oxydra.cli import build_parser;"
        "text = build_parser().format_help();"
        "print(max(map(len, text.splitlines())));"
        "print(sorted({'shutil', 'bz2', 'lzma'} & (set(sys.modules) - before)))"
    )
    for columns, widest in (("50", 48), ("200", 198)):
        env = {**os.environ, "COLUMNS": columns}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        width, loaded = out.stdout.splitlines()
        assert int(width) <= widest, width
        assert loaded == "[]"


class TestConfigCommand:
    def test_show_names_the_layer_of_each_value(self, tmp_path: Path) -> None:
        (tmp_path / ".oxydra").mkdir()
        (tmp_path / ".oxydra" / "agent.toml").write_text("[runtime]\nmax_turns = 9\n")
        out = run(
            ["config", "show", "--set", "runtime.turn_timeout_secs=5"],
            tmp_path,
            {"OXYDRA__GATEWAY__MAX_SESSIONS_PER_USER": "4"},
        )
        assert out.returncode == 0, out.stderr
        assert f"max_turns = 9  # {tmp_path / '.oxydra' / 'agent.toml'}" in out.stdout
        assert "turn_timeout_secs = 5  # --set runtime.turn_timeout_secs" in out.stdout
        assert (
            "max_sessions_per_user = 4  # env OXYDRA__GATEWAY__MAX_SESSIONS_PER_USER" in out.stdout
        )

    def test_check_passes_a_good_config(self, tmp_path: Path) -> None:
        out = run(["config", "check"], tmp_path, {"OPENAI_API_KEY": "sk-x"})
        assert out.returncode == 0 and "config ok" in out.stdout

    def test_check_lists_every_problem_and_fails(self, tmp_path: Path) -> None:
        (tmp_path / ".oxydra").mkdir()
        (tmp_path / ".oxydra" / "agent.toml").write_text(
            "[runtime]\nmax_turn = 9\nturn_timeout_secs = 'x'\n"
        )
        out = run(["config", "check"], tmp_path, {"OXYDRA__MEMORY__ENABLED": "perhaps"})
        assert out.returncode == 1
        assert out.stdout.count("error:") == 3 and "3 problem(s) found" in out.stdout
        assert "did you mean 'max_turns'" in out.stdout

    def test_check_reports_a_missing_api_key_with_the_variables_to_set(
        self, tmp_path: Path
    ) -> None:
        out = run(["config", "check"], tmp_path)
        assert out.returncode == 1 and "OPENAI_API_KEY" in out.stdout

    def test_check_also_checks_the_runner_toml_and_names_its_file_once(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / ".oxydra").mkdir()
        runner_toml = tmp_path / ".oxydra" / "runner.toml"
        runner_toml.write_text("[users.bob]\nconfig_path = 5\n")
        out = run(["config", "check"], tmp_path, {"OPENAI_API_KEY": "sk-x"})
        assert out.returncode == 1, out.stdout
        assert "users.bob.config_path" in out.stdout and "expected str" in out.stdout
        assert out.stdout.count(str(runner_toml)) == 1
        status = run(["runner", "--insecure", "status"], tmp_path)
        assert status.stderr.count(str(runner_toml)) == 1, status.stderr

    def test_show_and_check_say_what_the_shell_will_be(self, tmp_path: Path) -> None:
        from oxydra.security._landlock import landlock_abi

        abi, reason = landlock_abi()
        show = run(["config", "show"], tmp_path)
        check = run(["config", "check"], tmp_path, {"OPENAI_API_KEY": "sk-x"})
        expected = f"confined by Landlock (ABI {abi})" if abi > 0 else f"off: {reason}"
        assert "# shell_exec: " in show.stdout and expected in show.stdout
        assert "shell_exec: " in check.stdout and expected in check.stdout
        off = run(["config", "show", "--set", "tools.shell.enabled=false"], tmp_path)
        assert "# shell_exec: off ([tools.shell] enabled = false)" in off.stdout

    def test_show_with_a_bad_config_exits_2_with_the_problem(self, tmp_path: Path) -> None:
        out = run(["config", "show", "--set", "runtime.max_turns=-1"], tmp_path)
        assert (
            out.returncode == 2
            and "runtime.max_turns" in out.stderr
            and "Traceback" not in out.stderr
        )


@pytest.mark.parametrize("bad", [["config"], ["config", "explode"], ["nonsense"]])
def test_usage_errors_exit_2_without_a_traceback(tmp_path: Path, bad: list[str]) -> None:
    out = run(bad, tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_every_option_of_every_mode_is_described() -> None:
    from oxydra.cli import build_parser

    parser = build_parser()
    undescribed = []
    for action in parser._subparsers._group_actions[0].choices.items():  # type: ignore[union-attr]
        name, sub = action
        for option in sub._actions:
            if option.help is None or not str(option.help).strip():
                undescribed.append(f"{name} {'/'.join(option.option_strings) or option.dest}")
    assert undescribed == []


def test_runner_logs_help_describes_its_flags(tmp_path: Path) -> None:
    out = run(["runner", "logs", "--help"], tmp_path)
    assert out.returncode == 0, out.stderr
    options = out.stdout
    for text in ("whose log", "which stream", "the last N lines", "only lines after", "new lines"):
        assert text in options


class TestRunnerFlags:
    def parse(self, argv: list[str]) -> object:
        args = build_parser().parse_args(argv)
        if args.rest:
            _merge_runner_rest(args)
        return args

    def test_flags_after_the_subcommand_join_those_before_it(self) -> None:
        args = self.parse(["runner", "-e", "A=1", "-u", "ann", "logs", "-e", "B=2", "-f"])
        assert args.env == ["A=1", "B=2"] and args.user == "ann" and args.follow  # type: ignore[attr-defined]

    def test_a_flag_after_the_subcommand_wins(self) -> None:
        args = self.parse(["runner", "-u", "ann", "start", "-u", "bob", "--insecure"])
        assert args.user == "bob" and args.insecure and args.command == "start"  # type: ignore[attr-defined]

    def test_logs_flags_have_their_defaults_without_the_subcommand_flags(self) -> None:
        args = self.parse(["runner", "logs"])
        assert (args.role, args.stream, args.tail, args.follow) == ("runtime", "both", None, False)  # type: ignore[attr-defined]

    def test_an_unknown_flag_after_the_subcommand_is_a_usage_error(self, tmp_path: Path) -> None:
        out = run(["runner", "status", "--bogus"], tmp_path)
        assert out.returncode == 2 and "--bogus" in out.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["ask", "hi", "--json", "--set", "a.b=c", "--session", "s"],
        ["runner", "-u", "ann", "logs", "--tail", "5"],
        ["sessions", "rename", "abc", "new name", "--json"],
        ["vm", "--user-id", "bob"],
        ["store", "migrate", "--to", "x.db"],
    ],
)
def test_the_parser_of_one_mode_reads_it_as_the_whole_parser_does(argv: list[str]) -> None:
    assert vars(build_parser(argv[0]).parse_args(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("only", ["ask", ""])
def test_the_overview_lists_every_mode_whichever_parser_is_built(only: str) -> None:
    overview = build_parser(only).format_help()
    assert overview == build_parser().format_help()
