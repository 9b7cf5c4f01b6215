"""The built archive runs from a temp dir with an empty HOME: first run (unpack) and warm."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxydra import __version__

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "oxydra.pyz"
    subprocess.run(
        [sys.executable, str(ROOT / "build_pyz.py"), "--output", str(out)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def _run(pyz: Path, args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # A clean interpreter: -I ignores PYTHONPATH and user site, so only the archive supplies oxydra.
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(
        [sys.executable, "-I", str(pyz), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _in_archive(pyz: Path, home: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a clean interpreter with the archive's path set up as its boot does."""
    boot = (
        f"import runpy; g = runpy.run_path({str(pyz)!r}, run_name='oxy_boot');g['_prepare_path']()"
    )
    return subprocess.run(
        [sys.executable, "-I", "-c", boot + ";" + code],
        env={"HOME": str(home), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_archive_runs_version_and_config_show_cold_then_warm(pyz: Path, tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    for attempt in ("cold", "warm"):
        version = _run(pyz, ["--version"], home, work)
        assert version.returncode == 0, (attempt, version.stderr)
        assert version.stdout.strip() == f"oxydra {__version__}"
        show = _run(pyz, ["config", "show"], home, work)
        assert show.returncode == 0, (attempt, show.stderr)
        assert 'model = "gpt-4o-mini"  # default' in show.stdout
    caches = list((home / ".cache" / "oxydra" / "pyz").iterdir())
    assert len(caches) == 1 and (caches[0] / "msgspec").is_dir()


def test_archive_imports_oxydra_from_inside_itself(pyz: Path, tmp_path: Path) -> None:
    code = "import oxydra, msgspec, sys; print(oxydra.__file__); print(msgspec.__file__)"
    out = _in_archive(pyz, tmp_path, code)
    assert out.returncode == 0, out.stderr
    oxy_file, msgspec_file = out.stdout.splitlines()
    assert oxy_file.startswith(str(pyz))
    assert str(tmp_path / ".cache" / "oxydra" / "pyz") in msgspec_file


def test_archive_runs_the_wasm_guest_from_its_package_data(pyz: Path, tmp_path: Path) -> None:
    for sub in ("shared", "tmp", "vault"):
        (tmp_path / "ws" / sub).mkdir(parents=True)
    (tmp_path / "ws" / "shared" / "a.md").write_text("from the guest")
    code = (
        "from oxydra.security import Workspace; from oxydra.security.wasm import WasmWorkspace;"
        f"print(WasmWorkspace(Workspace.for_user({str(tmp_path / 'ws')!r})).read_text('a.md')[0])"
    )
    out = _in_archive(pyz, tmp_path, code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "from the guest"


def test_a_new_build_prunes_unpacked_builds_unused_for_a_day(pyz: Path, tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    cache = home / ".cache" / "oxydra" / "pyz"
    old, recent, scratch = cache / "0.1.0-old", cache / "0.2.0-recent", cache / ".unpack-dead"
    for directory in (old, recent, scratch):
        (directory / "msgspec").mkdir(parents=True)
    two_days_ago = time.time() - 2 * 86400
    for directory in (old, scratch):
        os.utime(directory, (two_days_ago, two_days_ago))
    work.mkdir()
    assert _run(pyz, ["--version"], home, work).returncode == 0
    left = {p.name for p in cache.iterdir()}
    assert "0.1.0-old" not in left and ".unpack-dead" not in left
    assert "0.2.0-recent" in left and len(left) == 2


def test_tracebacks_name_files_inside_the_archive_not_the_build_dir(
    pyz: Path, tmp_path: Path
) -> None:
    code = "import oxydra.cli as c; print(c.main.__code__.co_filename)"
    out = _in_archive(pyz, tmp_path, code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "oxydra.pyz/site/oxydra/cli.py"


def test_archive_reads_the_pinned_catalog_it_bundles(pyz: Path, tmp_path: Path) -> None:
    show = _run(pyz, ["catalog", "show"], tmp_path, tmp_path)
    assert show.returncode == 0, show.stderr
    assert "gpt-4o-mini" in show.stdout
    update = _run(pyz, ["catalog", "fetch", "--update-pinned"], tmp_path, tmp_path)
    assert update.returncode == 2 and "inside an archive" in update.stderr


def test_inside_the_archive_a_missing_extra_means_a_rebuild_not_pip(
    pyz: Path, tmp_path: Path
) -> None:
    code = "from oxydra.core.errors import install_hint; print(install_hint('embed'))"
    out = _in_archive(pyz, tmp_path, code)
    assert out.returncode == 0, out.stderr
    assert "build_pyz.py --with embed" in out.stdout and "pip install" not in out.stdout


def test_an_unwritable_cache_is_a_clear_error_naming_the_dir_and_the_fix(
    pyz: Path, tmp_path: Path
) -> None:
    # A service account's HOME often does not exist or is not writable (HOME=/nonexistent).
    # A file where the cache dir should be fails even for root, who ignores permissions.
    home, work = tmp_path / "home", tmp_path / "work"
    home.write_text("not a directory")
    work.mkdir()
    out = _run(pyz, ["--version"], home, work)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert str(home / ".cache" / "oxydra" / "pyz") in out.stderr
    assert "OXYDRA_PYZ_CACHE" in out.stderr


def test_archive_bundles_the_otel_extra_and_exports_from_inside_itself(
    pyz: Path, tmp_path: Path
) -> None:
    code = (
        "from oxydra.config.schema import ObservabilityConfig;"
        "from oxydra.observability import start_observability;"
        "from oxydra.core.log import span;"
        "import opentelemetry.sdk.trace, google.protobuf;"
        "obs = start_observability(ObservabilityConfig(enabled=True,"
        " otlp_endpoint='http://127.0.0.1:9', export_timeout_secs=1.0),"
        " workspace=None, environ={});"
        'exec(\'with span("turn", turn="t"): pass\');'
        "obs.bridge.shutdown();"
        "print(opentelemetry.sdk.trace.__file__); print(obs.bridge.dropped)"
    )
    out = _in_archive(pyz, tmp_path, code)
    assert out.returncode == 0, out.stderr
    sdk_file, dropped = out.stdout.splitlines()
    assert sdk_file.startswith(str(pyz)) or str(tmp_path / ".cache") in sdk_file
    assert dropped == "1"  # nothing listens on port 9: the span is counted, not lost silently


def test_archive_runs_a_confined_shell_through_its_intermediate(pyz: Path, tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    code = (
        "import asyncio; from oxydra.security import shell_sandbox;"
        "from oxydra.tools import LocalShellSession;"
        f"sb, why = shell_sandbox([{str(tmp_path / 'shared')!r}], allow_unconfined=True);"
        f"s = LocalShellSession({str(tmp_path / 'shared')!r}, sandbox=sb);"
        "out = asyncio.run(s.run('echo $PPID; grep NoNewPrivs /proc/self/status', timeout=60));"
        "import os; print(out.stdout, out.stderr, int(out.stdout.split()[0]) != os.getpid())"
    )
    out = _in_archive(pyz, tmp_path, code)
    assert out.returncode == 0, out.stderr
    assert "cannot start" not in out.stdout and out.stdout.strip().endswith("True")
    show = _run(pyz, ["config", "show"], tmp_path, tmp_path)
    assert "# shell_exec: " in show.stdout


def test_archive_ask_runs_file_write_and_read_in_one_turn_every_time(
    pyz: Path, tmp_path: Path
) -> None:
    """The WASM warm-up thread and the first file calls race in `ask`; none may fail."""
    script = tmp_path / "script.json"
    calls = [
        {"name": "file_write", "arguments": {"path": "/shared/n.txt", "content": "42"}},
        {"name": "file_read", "arguments": {"path": "/shared/a.txt"}},
    ]
    script.write_text(
        json.dumps([{"kind": "reply", "tool_calls": calls}, {"kind": "reply", "text": "done"}])
    )
    for run in range(3):
        home = tmp_path / f"home{run}"
        shared = home / ".oxydra" / "workspaces" / "default" / "shared"
        shared.mkdir(parents=True)
        (shared / "a.txt").write_text("hello-from-a")
        record = home / "requests.jsonl"
        with _fake_llm(script, record) as url:
            sets = [
                f"providers.registry.fake.base_url={url}",
                "providers.registry.fake.provider_type=openai",
                "providers.registry.fake.api_key=k",
                "selection.provider=fake",
            ]
            args = ["ask", *(a for s in sets for a in ("--set", s)), "write and read"]
            out = _run(pyz, args, home, home)
        assert out.returncode == 0, out.stderr
        sent_back = record.read_text()
        assert "hello-from-a" in sent_back and "Tool execution failed" not in sent_back, run
        assert (shared / "n.txt").read_text() == "42"


@contextlib.contextmanager
def _fake_llm(script: Path, record: Path) -> Iterator[str]:
    cmd = [sys.executable, "-m", "oxydra.testing.fake_llm", "--port", "0", "--script", str(script)]
    with subprocess.Popen(
        [*cmd, "--record", str(record)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    ) as server:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("FAKE_LLM_URL="), line
        try:
            yield line.strip().partition("=")[2]
        finally:
            server.terminate()


def test_archive_lists_and_reads_its_builtin_skill_and_parses_yaml(
    pyz: Path, tmp_path: Path
) -> None:
    (tmp_path / ".oxydra" / "skills" / "note-taking").mkdir(parents=True)
    (tmp_path / ".oxydra" / "skills" / "note-taking" / "SKILL.md").write_text(
        "---\nname: note-taking\ndescription: Keep notes\nmetadata:\n  author: me\n---\nBody\n"
    )
    listed = _run(pyz, ["skills", "list", "--workspace", str(tmp_path / "ws")], tmp_path, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "skill-authoring  active  builtin" in listed.stdout
    assert "note-taking  active" in listed.stdout
    shown = _run(
        pyz,
        ["skills", "show", "skill-authoring", "--workspace", str(tmp_path / "ws")],
        tmp_path,
        tmp_path,
    )
    assert "# Writing a skill" in shown.stdout


def test_archive_session_lifecycle_from_the_command_line(pyz: Path, tmp_path: Path) -> None:
    """Default config: `ask --name` records a session; list, rename, export, delete, audit."""
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"kind": "reply", "text": "noted"}]))
    home = tmp_path / "home"
    home.mkdir()
    with _fake_llm(script, tmp_path / "requests.jsonl") as url:
        sets = [
            f"providers.registry.fake.base_url={url}",
            "providers.registry.fake.provider_type=openai",
            "providers.registry.fake.api_key=k",
            "selection.provider=fake",
        ]
        flags = [a for s in sets for a in ("--set", s)]
        asked = _run(pyz, ["ask", *flags, "--name", "errands", "buy milk"], home, home)
        assert asked.returncode == 0, asked.stderr
        unknown = _run(pyz, ["ask", *flags, "--session", "no-such", "hi"], home, home)
    session = asked.stderr.split("session: ")[1].strip()
    assert (
        unknown.returncode == 2 and "no session of user `default` match `no-such`" in unknown.stderr
    )
    listed = _run(pyz, ["sessions", "list"], home, home)
    assert session in listed.stdout and "errands" in listed.stdout and "turns 1" in listed.stdout
    assert _run(pyz, ["sessions", "rename", session[:30], "shopping"], home, home).returncode == 0
    exported = _run(pyz, ["sessions", "export", session, "--format", "jsonl"], home, home)
    assert [json.loads(x)["text"] for x in exported.stdout.splitlines()] == ["buy milk", "noted"]
    deleted = _run(pyz, ["sessions", "delete", session], home, home)
    assert deleted.returncode == 0, deleted.stderr
    audit = _run(pyz, ["sessions", "audit"], home, home).stdout.splitlines()
    assert [line.split()[2] for line in audit] == ["delete", "export", "rename", "new"]
    assert "(no sessions)" in _run(pyz, ["sessions", "list"], home, home).stdout


def test_archive_delegates_a_brief_and_lists_the_child_under_its_parent(
    pyz: Path, tmp_path: Path
) -> None:
    """Default config plus one agent: the child sees only its brief and is a child session."""
    call = {
        "name": "delegate_to_agent",
        "arguments": {"agent_name": "helper", "goal": "count to two", "tools": ["file_list"]},
    }
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            [
                {"kind": "reply", "tool_calls": [call]},
                {"kind": "reply", "text": "one, two"},
                {"kind": "reply", "text": "it counted"},
            ]
        )
    )
    home = tmp_path / "home"
    home.mkdir()
    record = tmp_path / "requests.jsonl"
    with _fake_llm(script, record) as url:
        sets = [
            f"providers.registry.fake.base_url={url}",
            "providers.registry.fake.provider_type=openai",
            "providers.registry.fake.api_key=k",
            "selection.provider=fake",
            "agents.helper.system_prompt=You help.",
        ]
        flags = [a for s in sets for a in ("--set", s)]
        asked = _run(pyz, ["ask", *flags, "my secret question"], home, home)
    assert asked.returncode == 0 and asked.stdout.strip() == "it counted", asked.stderr
    child = json.loads(json.loads(record.read_text().splitlines()[1])["body"])
    brief = child["messages"][1]["content"]
    assert brief.startswith("Goal: count to two") and "Tools: file_list." in brief
    assert "my secret question" not in json.dumps(child)
    parent = asked.stderr.split("session: ")[1].strip()
    listed = _run(pyz, ["sessions", "list", "--subagents"], home, home).stdout.splitlines()
    assert listed[0].startswith(parent) and listed[1].startswith(f"  └ subagent:{parent}:")
