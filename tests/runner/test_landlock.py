"""Process-tier hardening: Landlock really confines, limits apply, and degradation is honest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oxydra.config.runner_schema import Resources
from oxydra.runner._bootstrap import load_guest_config
from oxydra.runner._hardening import describe, plan_hardening
from oxydra.runner._process import launch_process
from oxydra.runner._workspace import UserWorkspace, provision
from oxydra.security import _landlock as ll
from tests.runner.test_bootstrap import make_spec

ABI, WHY = ll.landlock_abi()
needs_landlock = pytest.mark.skipif(ABI <= 0, reason=f"no Landlock here: {WHY}")
ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import ctypes, json, os, resource, sys
libc = ctypes.CDLL(None, use_errno=True)
def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as exc:
        return exc.strerror
outside, inside, parent = sys.argv[1], sys.argv[2], int(sys.argv[3])
report = {
    "read_outside": attempt(lambda: open(outside).read()),
    "list_outside": attempt(lambda: os.listdir(os.path.dirname(outside))),
    "write_outside": attempt(lambda: open(outside + ".new", "w").write("x")),
    "read_inside": attempt(lambda: open(inside).read()),
    "write_inside": attempt(lambda: open(inside + ".new", "w").write("x")),
    "parent_environ": attempt(lambda: open(f"/proc/{parent}/environ").read()),
    "shadow": attempt(lambda: open("/etc/shadow").read()),
    "signal_parent": attempt(lambda: os.kill(parent, 0)),
    "shell": os.system(f"cat {outside} > /dev/null 2>&1"),
    "no_new_privs": libc.prctl(39, 0, 0, 0, 0),
    "core": resource.getrlimit(resource.RLIMIT_CORE)[0],
    "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[0],
}
open(inside + ".report", "w").write(json.dumps(report))
"""


def run_confined(
    workspace: UserWorkspace, outside: Path, resources: Resources, home: Path | None = None
) -> dict[str, object]:
    plan = plan_hardening(
        workspace, resources, environ=os.environ, home=home or Path.home(), cwd=workspace.root
    )
    inside = workspace.shared / "inside.txt"
    inside.write_text("mine\n")
    argv = [sys.executable, "-c", PROBE, str(outside), str(inside), str(os.getpid())]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run(
            argv, env=env, preexec_fn=plan.preexec, capture_output=True, text=True, timeout=60
        )
    finally:
        plan.close()
    assert proc.returncode == 0, proc.stderr
    return json.loads((workspace.shared / "inside.txt.report").read_text())


@needs_landlock
class TestConfinement:
    @pytest.fixture
    def report(self, tmp_path: Path) -> dict[str, object]:
        secret = tmp_path / "secret.txt"
        secret.write_text("host secret\n")
        workspace = provision(tmp_path / "ws" / "alice")
        return run_confined(workspace, secret, Resources(max_processes=4096))

    @pytest.mark.parametrize(
        "key", ["read_outside", "list_outside", "write_outside", "parent_environ", "shadow"]
    )
    def test_the_guest_cannot_touch_files_outside_its_workspace(
        self, report: dict[str, object], key: str
    ) -> None:
        assert report[key] == "Permission denied"

    def test_the_guest_reads_and_writes_inside_its_workspace(
        self, report: dict[str, object]
    ) -> None:
        assert report["read_inside"] == "ok" and report["write_inside"] == "ok"

    def test_shell_commands_the_guest_runs_are_confined_too(
        self, report: dict[str, object]
    ) -> None:
        assert report["shell"] != 0

    @pytest.mark.skipif(ABI < 6, reason="signal scoping needs Landlock ABI 6")
    def test_the_guest_cannot_signal_the_runner(self, report: dict[str, object]) -> None:
        assert report["signal_parent"] == "Operation not permitted"

    def test_no_new_privs_and_rlimits_are_set(self, report: dict[str, object]) -> None:
        assert report["no_new_privs"] == 1
        assert report["core"] == 0
        assert report["nofile"] <= 4096  # type: ignore[operator]
        assert report["nproc"] == 4096

    def test_a_sibling_workspace_is_out_of_reach(self, tmp_path: Path) -> None:
        bob = provision(tmp_path / "ws" / "bob")
        (bob.shared / "diary.txt").write_text("bob's\n")
        alice = provision(tmp_path / "ws" / "alice")
        report = run_confined(alice, bob.shared / "diary.txt", Resources())
        assert report["read_outside"] == "Permission denied"

    def test_the_operators_skills_are_readable_and_never_writable(self, tmp_path: Path) -> None:
        home = tmp_path / "home"
        skill = home / ".oxydra" / "skills" / "greeter" / "SKILL.md"
        skill.parent.mkdir(parents=True)
        skill.write_text("---\nname: greeter\ndescription: Greets.\n---\nHi.\n")
        report = run_confined(provision(tmp_path / "ws" / "alice"), skill, Resources(), home)
        assert report["read_outside"] == "ok" and report["list_outside"] == "ok"
        assert report["write_outside"] == "Permission denied"


class TestDegradation:
    def test_without_landlock_the_plan_says_why_and_applies_the_rest(self, tmp_path: Path) -> None:
        workspace = provision(tmp_path / "alice")
        plan = plan_hardening(
            workspace,
            Resources(),
            environ={},
            home=tmp_path,
            cwd=tmp_path,
            abi_probe=lambda: (0, "the kernel has no Landlock support"),
        )
        assert not plan.confined
        assert describe(plan) == "no_new_privs,rlimits"
        [(code, detail)] = plan.degraded
        assert code == "process_hardening_limited"
        assert "no Landlock support" in detail and "shell tool disabled" in detail

    def test_without_landlock_the_guest_is_told_the_shell_is_unavailable(
        self, tmp_path: Path
    ) -> None:
        spec = make_spec(tmp_path, {"PATH": "/usr/bin:/bin", "API_KEY": "k", "HOME": str(tmp_path)})
        plan = plan_hardening(
            spec.workspace,
            Resources(),
            environ={},
            home=spec.home,
            cwd=spec.cwd,
            abi_probe=lambda: (0, "Landlock is disabled at boot"),
        )
        launch = launch_process(spec, load_guest_config(spec), plan)
        try:
            status = launch.status
            assert not status.shell_available
            assert status.hardening == ["no_new_privs", "rlimits"]
            codes = [r.code for r in status.degraded_reasons]
            assert codes == ["insecure_process_tier", "process_hardening_limited"]
        finally:
            launch.stop(grace=5)


class TestAbi:
    @pytest.mark.parametrize(
        ("abi", "has", "lacks"),
        [
            (1, ll.MAKE_SYM, ll.REFER),
            (2, ll.REFER, ll.TRUNCATE),
            (3, ll.TRUNCATE, ll.IOCTL_DEV),
            (5, ll.IOCTL_DEV, 1 << 16),
            (7, ll.IOCTL_DEV, 1 << 16),
        ],
    )
    def test_rights_are_masked_to_what_the_kernel_knows(
        self, abi: int, has: int, lacks: int
    ) -> None:
        rights = ll.fs_rights_for(abi)
        assert rights & has and not rights & lacks

    def test_no_abi_means_no_rights(self) -> None:
        assert ll.fs_rights_for(0) == 0

    @needs_landlock
    def test_missing_paths_are_skipped_not_fatal(self, tmp_path: Path) -> None:
        rules = [
            ll.PathRule(str(tmp_path), ll.READ_ONLY),
            ll.PathRule("/no/such/dir", ll.READ_ONLY),
        ]
        ruleset = ll.Ruleset.build(rules, ABI)
        try:
            assert ruleset.applied == [str(tmp_path)] and ruleset.skipped == ["/no/such/dir"]
        finally:
            ruleset.close()
