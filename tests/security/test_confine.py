"""The shell sandbox against a hostile command: real processes, the real kernel.

Each test is an attack of issue 12 (items 1 and 2): read the agent's environment through
`/proc/$PPID`, leave a helper running past the call, keep secrets in the environment.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from oxydra.config.schema import AgentConfig
from oxydra.security import _landlock as ll
from oxydra.security.confine import ShellSandbox, shell_environment, shell_sandbox, shell_status
from oxydra.tools import LocalShellSession

ABI = ll.landlock_abi()[0]
needs_landlock = pytest.mark.skipif(ABI <= 0, reason="this kernel has no Landlock")
ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_gone(pids: list[int], seconds: float = 10) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _session(tmp_path: Path, abi: int = ABI, **kw: object) -> LocalShellSession:
    (tmp_path / "shared").mkdir(exist_ok=True)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    writable = (str(tmp_path / "shared"), str(tmp_path / "tmp"))
    return LocalShellSession(
        str(tmp_path / "shared"),
        sandbox=ShellSandbox(writable=writable, abi=abi),
        tmp=str(tmp_path / "tmp"),
        kill_grace=0.5,
        **kw,  # type: ignore[arg-type]
    )


class TestTheShellIsNotAChildOfTheAgent:
    async def test_ppid_is_the_intermediate_and_not_the_agent(self, tmp_path: Path) -> None:
        out = await _session(tmp_path).run("echo $PPID", timeout=20)
        parent = int(out.stdout)
        assert parent != os.getpid()

    @needs_landlock
    async def test_no_process_environment_or_memory_is_readable(self, tmp_path: Path) -> None:
        me = os.getpid()
        command = (
            f"cat /proc/{me}/environ; cat /proc/$PPID/environ; head -c1 /proc/{me}/mem;"
            " ls /proc; echo end"
        )
        out = await _session(tmp_path).run(command, timeout=20)
        assert out.stdout == "end\n"
        assert out.stderr.count("Permission denied") == 4, out.stderr

    @pytest.mark.skipif(os.geteuid() != 0, reason="capabilities are dropped for root only")
    async def test_a_root_shell_has_no_capability(self, tmp_path: Path) -> None:
        out = await _session(tmp_path, abi=0).run(
            "grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status", timeout=20
        )
        values = {line.split()[0]: int(line.split()[1], 16) for line in out.stdout.splitlines()}
        assert values == {"CapPrm:": 0, "CapEff:": 0, "CapBnd:": 0}

    async def test_no_new_privs_is_set(self, tmp_path: Path) -> None:
        out = await _session(tmp_path, abi=0).run("grep NoNewPrivs /proc/self/status", timeout=20)
        assert out.stdout.split() == ["NoNewPrivs:", "1"]


class TestNothingOutlivesTheCall:
    @pytest.mark.parametrize(
        "abi", [ABI, 0], ids=["landlock-scoped-kill", "proc-listing-without-landlock"]
    )
    async def test_a_setsid_helper_is_killed_when_the_call_ends(
        self, tmp_path: Path, abi: int
    ) -> None:
        command = (
            "setsid -f sh -c 'echo $$ > h1.pid; exec sleep 300';"
            " (sh -c 'echo $$ > h2.pid; exec sleep 300' &) ;"
            " sleep 0.3; echo started"
        )
        out = await _session(tmp_path, abi=abi).run(command, timeout=20)
        assert out.stdout == "started\n" and out.exit_code == 0
        pids = [int((tmp_path / "shared" / n).read_text()) for n in ("h1.pid", "h2.pid")]
        assert _wait_gone(pids) == []

    async def test_a_timeout_kills_helpers_outside_the_process_group(self, tmp_path: Path) -> None:
        command = "setsid -f sh -c 'echo $$ > h.pid; exec sleep 300'; sleep 300"
        out = await _session(tmp_path).run(command, timeout=1)
        assert out.timed_out
        pid = int((tmp_path / "shared" / "h.pid").read_text())
        assert _wait_gone([pid]) == []

    async def test_a_helper_cannot_signal_the_intermediate_to_escape(self, tmp_path: Path) -> None:
        command = (
            "setsid -f sh -c 'echo $$ > h.pid; exec sleep 300'; sleep 0.3; kill -9 $PPID; echo $?"
        )
        out = await _session(tmp_path).run(command, timeout=20)
        pid = int((tmp_path / "shared" / "h.pid").read_text())
        assert _wait_gone([pid]) == []
        if ABI >= 6:  # Landlock scopes signals to the shell's own domain
            assert out.stdout.strip() != "0"

    def test_a_kill_9_of_the_agent_kills_every_process_of_the_call(self, tmp_path: Path) -> None:
        agent = textwrap.dedent(
            f"""
            import asyncio
            from pathlib import Path
            from tests.security.test_confine import _session
            command = "setsid -f sh -c 'echo $$ > h.pid; exec sleep 300'; echo $$ > sh.pid"
            command += "; sleep 300"
            asyncio.run(_session(Path({str(tmp_path)!r})).run(command, timeout=300))
            """
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", agent], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        shared = tmp_path / "shared"
        deadline = time.monotonic() + 30
        while not ((shared / "h.pid").exists() and (shared / "sh.pid").exists()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        pids = [int((shared / n).read_text()) for n in ("h.pid", "sh.pid")]
        assert all(_alive(p) for p in pids)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _wait_gone(pids) == []


class TestTheConfinementServer:
    """One server forks every call's intermediate; it must add no way out."""

    async def test_the_command_holds_no_descriptor_but_its_stdio(self, tmp_path: Path) -> None:
        # abi=0 leaves /proc readable: the control socket, the spec and the report pipe
        # must not be open in the shell (it could ask the server for an unconfined run)
        out = await _session(tmp_path, abi=0).run("ls /proc/self/fd", timeout=20)
        assert out.stdout.split() == ["0", "1", "2", "3"]  # 3: the directory ls reads

    async def test_one_server_forks_every_intermediate(self, tmp_path: Path) -> None:
        from oxydra.security import _confine_client

        session = _session(tmp_path, abi=0)
        first = await session.run("grep PPid /proc/$PPID/status", timeout=20)
        second = await session.run("grep PPid /proc/$PPID/status", timeout=20)
        server = _confine_client._current()
        assert first.stdout == second.stdout == f"PPid:\t{server.process.pid}\n"

    async def test_the_server_holds_no_environment(self, tmp_path: Path) -> None:
        from oxydra.security import _confine_client

        await _session(tmp_path, abi=0).run("true", timeout=20)
        pid = _confine_client._current().process.pid
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except PermissionError:
            pytest.skip("a non-dumpable process's environ is readable by root only")
        assert environ == b""

    async def test_a_killed_intermediate_leaves_no_helper(self, tmp_path: Path) -> None:
        command = "setsid -f sh -c 'echo $$ > h.pid; exec sleep 300'; sleep 0.3; kill -9 $PPID"
        out = await _session(tmp_path, abi=0).run(command, timeout=20)
        assert out.exit_code == -signal.SIGKILL
        pid = int((tmp_path / "shared" / "h.pid").read_text())
        assert _wait_gone([pid]) == []

    async def test_a_killed_server_stops_its_commands_and_is_replaced(self, tmp_path: Path) -> None:
        from oxydra.security import _confine_client

        session = _session(tmp_path)
        await session.run("true", timeout=20)
        server = _confine_client._current().process
        call = asyncio.ensure_future(session.run("echo $$ > sh.pid; exec sleep 300", timeout=300))
        pid_file = tmp_path / "shared" / "sh.pid"
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        server.kill()
        out = await asyncio.wait_for(call, 30)
        assert out.exit_code is not None and out.exit_code < 0
        assert _wait_gone([int(pid_file.read_text())]) == []
        again = await session.run("echo fine", timeout=20)
        assert again.stdout == "fine\n" and _confine_client._current().process.pid != server.pid


class TestEnvironment:
    def test_secrets_and_oxydra_variables_never_reach_the_shell(self) -> None:
        source = {
            "PATH": "/bin",
            "OPENAI_API_KEY": "sk-a",
            "OXYDRA__GATEWAY__AUTH_TOKEN": "tok",
            "MY_KEY": "sk-a",
            "FINE": "1",
        }
        env = shell_environment(
            source,
            ["OPENAI_API_KEY", "OXYDRA__GATEWAY__AUTH_TOKEN", "MY_KEY", "FINE"],
            home="/w/shared",
            tmp="/w/tmp",
            secrets=["sk-a"],
        )
        assert env == {
            "PATH": "/bin",
            "FINE": "1",
            "LANG": "C.UTF-8",
            "HOME": "/w/shared",
            "TMPDIR": "/w/tmp",
            "TERM": "dumb",
        }


class TestWithoutLandlock:
    def test_the_shell_is_off_and_the_reason_names_the_opt_in(self) -> None:
        sandbox, why = shell_sandbox(
            ("/w",), allow_unconfined=False, probe=lambda: (0, "the kernel has no Landlock")
        )
        assert sandbox is None
        assert why.startswith("off: the kernel has no Landlock")
        assert "allow_unconfined = true" in why

    def test_the_operator_can_opt_in_by_name(self) -> None:
        sandbox, why = shell_sandbox(("/w",), allow_unconfined=True, probe=lambda: (0, "no"))
        assert sandbox is not None and not sandbox.confined and sandbox.rules() is None
        assert "UNCONFINED" in why

    def test_no_shell_tool_is_registered(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from oxydra.security import Workspace
        from oxydra.tools import default_tools

        monkeypatch.setattr(ll, "landlock_abi", lambda: (0, "the kernel has no Landlock"))
        for name in ("shared", "tmp", "vault"):
            (tmp_path / name).mkdir()
        jail = Workspace.for_user(tmp_path)
        names = {t.name for t in default_tools(AgentConfig(), jail, environ={})}
        assert "shell_exec" not in names and "file_read" in names
        opted = msgspec_with_opt_in()
        names = {t.name for t in default_tools(opted, jail, environ={})}
        assert "shell_exec" in names

    def test_status_sentence(self) -> None:
        assert shell_status(enabled=False, allow_unconfined=False).startswith("off (")
        if ABI > 0:
            assert "Landlock" in shell_status(enabled=True, allow_unconfined=False)


def msgspec_with_opt_in() -> AgentConfig:
    import msgspec

    tree = msgspec.to_builtins(AgentConfig())
    tree["tools"]["shell"]["allow_unconfined"] = True
    return msgspec.convert(tree, AgentConfig)


def test_the_confinement_server_imports_nothing_of_the_package() -> None:
    from oxydra.security._confine_client import boot_line

    probe = boot_line().replace("_confine_server.serve()", "print(sorted(sys.modules))")
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True
    )
    assert "oxydra" not in out.stdout and "'_confine_server'" in out.stdout
    assert "'_confine_child'" in out.stdout
    assert asyncio.iscoroutinefunction(LocalShellSession.run)


@pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/bin/python3").exists() or not shutil.which("setpriv"),
    reason="needs root and setpriv to switch to another uid, and a system python it can run",
)
def test_a_non_dumpable_agent_hides_its_environment_from_its_own_uid() -> None:
    """The second line for the opt-in without Landlock: same uid, still no /proc/environ."""
    agent = (
        "import ctypes, os, subprocess, sys\n"
        "libc = ctypes.CDLL(None)\n"
        "if sys.argv[1] == '1': libc.prctl(4, 0, 0, 0, 0)  # what protect_agent_process does\n"
        "me = os.getpid()\n"
        "r = subprocess.run(['cat', f'/proc/{me}/environ'], capture_output=True)\n"
        "print(b'SECRETX=abc' in r.stdout)\n"
    )
    seen = []
    for flag in ("0", "1"):
        out = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "/usr/bin/python3", "-I", "-c", agent, flag],
            env={"SECRETX": "abc", "PATH": "/usr/bin:/bin"},
            cwd="/", capture_output=True, text=True, check=True,
        )  # fmt: skip
        seen.append(out.stdout.strip())
    assert seen == ["True", "False"]


def test_protect_agent_process_makes_this_process_non_dumpable() -> None:
    code = (
        "import ctypes; from oxydra.security import protect_agent_process;"
        "assert protect_agent_process(); print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "0", out.stderr
