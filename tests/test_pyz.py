"""The built archive runs from a temp dir with an empty HOME: first run (unpack) and warm."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import zipfile
import zipimport
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxydra import __version__
from oxydra.security._landlock import landlock_abi
from tests.support_once import built_archive

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive, built once per test run (the tests only read it)."""
    return built_archive(tmp_path_factory)


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


def test_a_first_run_unpacks_only_what_it_imports(pyz: Path, tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    assert _run(pyz, ["--version"], home, work).returncode == 0
    cache = next((home / ".cache" / "oxydra" / "pyz").iterdir())
    unpacked = {p.name for p in cache.iterdir() if not p.name.endswith(".dist-info")}
    assert unpacked == {".compiled"}, unpacked  # metadata only: no numpy, wasmtime, numkong
    compiled = {p.name for p in (cache / ".compiled").iterdir()}
    assert "oxydra" in compiled and not {"numpy", "wasmtime"} & compiled  # what it imported
    # asking whether an extra is there unpacks nothing; importing it unpacks it, libs too
    code = (
        "import importlib.util, os, sys;"
        "print(importlib.util.find_spec('wasmtime') is not None);"
        f"print(' '.join(sorted(os.listdir({str(cache)!r}))));"
        "import numpy; print(numpy.add(1, 2), numpy.__file__)"
    )
    out = _in_archive(pyz, home, code)
    assert out.returncode == 0, out.stderr
    found, listing, numpy_line = out.stdout.splitlines()
    assert found == "True" and not {"wasmtime", "numpy"} & set(listing.split())
    assert numpy_line.startswith("3 ") and str(cache) in numpy_line
    assert (cache / "numpy.libs").is_dir() and not (cache / "wasmtime").exists()


def test_the_archive_ignores_the_interpreters_site_packages(pyz: Path, tmp_path: Path) -> None:
    code = "import sys; print([p for p in sys.path if 'site-packages' in p])"
    out = _in_archive(pyz, tmp_path, code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_bootstrap_runs_compiled_and_falls_back_to_its_source(pyz: Path) -> None:
    """Python runs `__main__.pyc` (nothing compiled at start); the source is there for an
    interpreter whose bytecode differs, and is what a traceback shows."""
    importer = zipimport.zipimporter(str(pyz))
    assert importer.get_filename("__main__") == f"{pyz}/__main__.pyc"
    assert importer.get_code("__main__").co_filename == "oxydra.pyz/__main__.py"
    with zipfile.ZipFile(pyz) as zf:
        assert zf.read("__main__.py").startswith(b'"""Entry point of `oxydra.pyz`')


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


def test_resources_in_the_archive_are_read_without_parsing_it_again(
    pyz: Path, tmp_path: Path
) -> None:
    """`importlib.resources` reads through the pack's index (`_entry_class`): the same
    files and folders as the package has, and no `ZipFile` opened to find them."""
    code = """
import json, zipfile
from importlib import resources
import oxydra.catalog.data, oxydra.memory.migrations, oxydra.tools.skills  # unpacks msgspec
opened = []
init = zipfile.ZipFile.__init__
zipfile.ZipFile.__init__ = lambda self, *a, **k: (opened.append(a[0]), init(self, *a, **k))[1]
root = resources.files("oxydra.tools.skills")
skill = root / "builtin" / "skill-authoring"
missing = root.joinpath("builtin", "nope.md")
try:
    missing.read_bytes()
    raised = False
except FileNotFoundError:
    raised = True
migrations = sorted(e.name for e in resources.files("oxydra.memory.migrations").iterdir())
PINNED = "pinned_model_catalog.json"
print(json.dumps({
    "kind": type(root).__name__,
    "builtin": [e.name for e in root.joinpath("builtin").iterdir()],
    "dir": [skill.is_dir(), skill.is_file(), root.joinpath("builtin/skill-authoring").is_dir()],
    "file": [skill.joinpath("SKILL.md").is_file(), skill.joinpath("SKILL.md").is_dir()],
    "text": skill.joinpath("SKILL.md").read_text(encoding="utf-8").splitlines()[0],
    "bytes": len(resources.files("oxydra.catalog.data").joinpath(PINNED).read_bytes()),
    "missing": [missing.is_file(), missing.is_dir(), raised],
    "migrations": migrations[:1],
    "opened": opened,
}))
"""
    done = _in_archive(pyz, tmp_path, code)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    pinned = ROOT / "catalog" / "pinned_model_catalog.json"
    assert got["kind"] == "Entry" and got["builtin"] == ["skill-authoring"]
    assert got["dir"] == [True, False, True] and got["file"] == [True, False]
    assert got["text"] == "---" and got["bytes"] == len(pinned.read_bytes())
    assert got["missing"] == [False, False, True]
    assert got["migrations"] == ["0001_conversation.sql"]
    assert got["opened"] == [], "the archive was opened and parsed again"


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


def _first_line(proc: subprocess.Popen[str], prefix: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line.strip().partition("=")[2]
    raise AssertionError(f"no {prefix} line; exit {proc.wait()}")


def test_archive_serves_the_configurator_and_the_chat_page_from_its_own_files(
    pyz: Path, tmp_path: Path
) -> None:
    """`runner web` with the default config, and the `vm`'s page, both from inside the archive."""
    import re
    import urllib.request

    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    argv = [sys.executable, "-I", str(pyz), "runner", "web", "--bind", "127.0.0.1:0"]
    with subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True) as web:
        try:
            url = _first_line(web, "web_url=")
            with urllib.request.urlopen(url + "api/v1/meta", timeout=20) as res:
                meta = json.loads(res.read())
            assert meta["data"]["version"] == __version__ and meta["meta"]["request_id"]
            with urllib.request.urlopen(url, timeout=20) as res:
                page = res.read().decode()
                assert "script-src 'self'" in res.headers["Content-Security-Policy"]
            script = re.search(r'src="(/static/[0-9a-f]+/config\.js)"', page)
            assert script is not None
            with urllib.request.urlopen(url + script.group(1)[1:], timeout=20) as res:
                assert b"/api/v1" in res.read()
        finally:
            web.terminate()
    script_file = tmp_path / "script.json"
    script_file.write_text("[]")
    with _fake_llm(script_file, tmp_path / "requests.jsonl") as llm:
        sets = [
            f"providers.registry.fake.base_url={llm}",
            "providers.registry.fake.provider_type=openai",
            "providers.registry.fake.api_key=k",
            "selection.provider=fake",
        ]
        argv = [sys.executable, "-I", str(pyz), "vm", "--user-id", "u"]
        argv += ["--workspace-root", str(tmp_path / "ws"), *(a for s in sets for a in ("--set", s))]
        with subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True) as vm:
            try:
                endpoint = _first_line(vm, "gateway_endpoint=")
                page_url = endpoint.replace("ws://", "http://").removesuffix("ws")
                with urllib.request.urlopen(page_url, timeout=20) as res:
                    assert b'id="signin-form"' in res.read()
            finally:
                vm.terminate()


async def test_archive_vm_answers_a_telegram_message(pyz: Path, tmp_path: Path) -> None:
    from oxydra.testing.fake_llm import FakeLLM, Reply
    from oxydra.testing.fake_telegram import FakeTelegram

    async with FakeLLM() as llm, FakeTelegram("42:archive-token") as telegram:
        llm.add([Reply(text="**from** the archive")])
        (tmp_path / "alice.toml").write_text(
            "[[people]]\nid = \"alice\"\ntelegram = [\"7\"]\n\n[channels.telegram]\n"
            f"enabled = true\nbot_token_env = \"BOT\"\napi_base_url = \"{telegram.base_url}\"\n"
        )  # fmt: skip
        sets = [
            f"providers.registry.fake.base_url={llm.base_url}",
            "providers.registry.fake.provider_type=openai",
            "providers.registry.fake.api_key=k",
            "selection.provider=fake",
        ]
        cmd = [sys.executable, "-I", str(pyz), "vm", "--user-id", "alice", "--workspace-root",
               str(tmp_path / "ws"), "--user-config", str(tmp_path / "alice.toml"),
               *(a for s in sets for a in ("--set", s))]  # fmt: skip
        env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", ""), "BOT": telegram.token}
        with open(tmp_path / "vm.err", "wb") as err:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            telegram.user_message("hi", user_id=7)
            await telegram.wait_for(lambda f: any("<b>from</b>" in t for t in f.texts(7)), 120)
        finally:
            proc.terminate()
            proc.wait(30)
        assert proc.returncode == 0, (tmp_path / "vm.err").read_text()


async def test_archive_vm_serves_the_openai_endpoint_to_the_openai_sdk(
    pyz: Path, tmp_path: Path
) -> None:
    import openai

    from oxydra.testing.fake_llm import FakeLLM, Reply

    async with FakeLLM() as llm:
        llm.add([Reply(text="hello from the archive's endpoint")])
        (tmp_path / "alice.toml").write_text("[channels.openai]\nenabled = true\n")
        sets = [
            f"providers.registry.fake.base_url={llm.base_url}",
            "providers.registry.fake.provider_type=openai",
            "providers.registry.fake.api_key=k",
            "selection.provider=fake",
        ]
        workspace = tmp_path / "ws"
        cmd = [sys.executable, "-I", str(pyz), "vm", "--user-id", "alice", "--workspace-root",
               str(workspace), "--user-config", str(tmp_path / "alice.toml"),
               *(a for s in sets for a in ("--set", s))]  # fmt: skip
        token = "archive-gateway-token-0123456789"
        env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", ""),
               "OXYDRA__GATEWAY__AUTH_TOKEN": token}  # fmt: skip
        marker = workspace / "ipc" / "openai-endpoint"
        with open(tmp_path / "vm.err", "wb") as err:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            for _ in range(1200):
                if marker.exists() or proc.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            assert marker.exists(), (tmp_path / "vm.err").read_text()
            async with openai.AsyncOpenAI(
                base_url=marker.read_text().strip(), api_key=token, max_retries=0
            ) as client:
                answer = await client.chat.completions.create(
                    model="default", messages=[{"role": "user", "content": "hi"}]
                )
            assert answer.choices[0].message.content == "hello from the archive's endpoint"
        finally:
            proc.terminate()
            proc.wait(30)
        assert proc.returncode == 0, (tmp_path / "vm.err").read_text()


def test_archive_stores_and_searches_memory_on_postgres_with_its_bundled_driver(
    pyz: Path, tmp_path: Path, pg_url: str
) -> None:
    """`[memory] backend = "postgres"` from inside the archive: psycopg (and its libpq)
    come from the archive, the schema is migrated, an event is stored and found again."""
    code = (
        "import asyncio, psycopg, pathlib;"
        "from oxydra.config.schema import MemoryConfig;"
        "from oxydra.memory import Memory, HashedEmbedder;"
        "from oxydra.core import Message;"
        "exec('''async def main():\\n"
        f"    config = MemoryConfig(backend='postgres', postgres_url={pg_url!r})\\n"
        "    m = await Memory.from_config(config, workspace_root=pathlib.Path('.'),"
        " embedder=HashedEmbedder())\\n"
        "    await m.create_session('s1', user_id='alice')\\n"
        "    await m.append_events('s1', [Message(role='user', content='the boat is blue')])\\n"
        "    hits = await m.search('boat', user_id='alice')\\n"
        "    print(m.dialect, hits[0].text)\\n"
        "    await m.close()\\n"
        "''');"
        "asyncio.run(main()); print(psycopg.__file__)"
    )
    out = _in_archive(pyz, tmp_path, code)
    assert out.returncode == 0, out.stderr
    found, driver = out.stdout.splitlines()
    assert found == "postgres the boat is blue"
    assert driver.startswith(str(pyz)) or str(tmp_path / ".cache") in driver


MCP_PROBE = """
import asyncio, json, os, sys
from pathlib import Path
from oxydra.config.schema import McpConfig, McpServerConfig
from oxydra.security import Workspace
from oxydra.tools import LocalFileBackend, ToolExecutionContext, ToolRegistry
from oxydra.tools.mcp import McpHub

async def main(home):
    server = McpServerConfig(
        command=sys.executable, args=[{server!r}], read_paths=[{servers!r}],
        startup_timeout_secs=30.0,
    )
    environ = {{"PATH": os.environ["PATH"], "OPENAI_API_KEY": "sk-archive-secret"}}
    os.environ["OPENAI_API_KEY"] = "sk-archive-secret"
    hub = McpHub(McpConfig(servers={{"bad": server}}), ToolRegistry(), environ=environ,
                 state_dir=home / "mcp")
    await hub.start()
    for sub in ("shared", "tmp", "vault"):
        (home / "ws" / sub).mkdir(parents=True, exist_ok=True)
    ctx = ToolExecutionContext(user_id="u", session_id="s",
                               workspace=LocalFileBackend(Workspace.for_user(home / "ws")))
    try:
        probe = await hub.registry.execute("bad__probe", {{"pid": os.getpid()}}, ctx)
        env = await hub.registry.execute("bad__env", {{}}, ctx)
        print(json.dumps({{"status": hub.status()[0].confinement, "probe": json.loads(probe.text),
                          "env": json.loads(env.text), "agent": os.getpid()}}))
    finally:
        await hub.stop()

asyncio.run(main(Path(os.environ["HOME"])))
"""


@pytest.mark.skipif(landlock_abi()[0] <= 0, reason="this kernel has no Landlock")
def test_archive_starts_an_mcp_server_through_the_shells_launcher(
    pyz: Path, tmp_path: Path
) -> None:
    """From inside the zip the launcher still loads and confines: what a hostile server sees."""
    servers = ROOT / "tests" / "tools" / "mcp" / "servers"
    script = tmp_path / "probe.py"
    script.write_text(
        MCP_PROBE.format(server=str(servers / "misbehaving.py"), servers=str(servers))
    )
    out = _in_archive(pyz, tmp_path, f"exec(open({str(script)!r}).read())")
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["status"].startswith("landlock")
    probe = seen["probe"]
    assert probe["ppid"] != seen["agent"] and probe["no_new_privs"] == 1
    assert probe["environ"].startswith("PermissionError")
    assert "sk-archive-secret" not in json.dumps(seen["env"]) + json.dumps(probe)


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
