"""`vm` start-up on a broken disk: a sentence naming the path, never a traceback."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from oxydra.testing.fake_llm import FakeLLM
from tests.gateway.support import VmProcess


def _unshared_mounts() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(
    not _unshared_mounts(), reason="needs root and mount namespaces (unshare -m)"
)


def _run_vm_under(tmp: Path, url: str, setup: str) -> subprocess.CompletedProcess[str]:
    """`oxydra vm` in a private mount namespace after `setup` ran there."""
    vm = VmProcess(tmp, url)
    script = f"set -e; {setup}; exec {shlex.join(vm.cmd)}"
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        env=vm.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@needs_mounts
async def test_a_full_disk_at_the_endpoint_marker_is_named(tmp_path: Path) -> None:
    async with FakeLLM() as llm:
        ipc = tmp_path / "ws" / "alice" / "ipc"
        setup = (
            f"mkdir -p {ipc} && mount -t tmpfs -o size=16k tmpfs {ipc} && "
            f"(dd if=/dev/zero of={ipc}/filler bs=1k count=64 2>/dev/null || true)"
        )
        out = _run_vm_under(tmp_path, llm.base_url, setup)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "No space left on device" in out.stderr
    assert str(ipc / "gateway-endpoint") in out.stderr or str(ipc / "gateway-token") in out.stderr
    assert "disk is full" in out.stderr


@needs_mounts
async def test_a_read_only_workspace_is_named(tmp_path: Path) -> None:
    async with FakeLLM() as llm:
        workspace = tmp_path / "ws" / "alice"
        setup = f"mkdir -p {workspace} && mount -t tmpfs -o ro,size=16k tmpfs {workspace}"
        out = _run_vm_under(tmp_path, llm.base_url, setup)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "Read-only file system" in out.stderr and str(workspace) in out.stderr


async def test_a_zero_length_database_is_refused_not_started_empty(tmp_path: Path) -> None:
    async with FakeLLM() as llm:
        vm = VmProcess(tmp_path, llm.base_url)
        endpoint = await vm.start()
        assert endpoint
        await vm.stop()
        db = next(vm.workspace.rglob("memory.db"))
        assert db.stat().st_size > 0, "the vm keeps its memory database in its workspace"
        db.write_bytes(b"")
        for side in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            side.unlink(missing_ok=True)
        out = subprocess.run(vm.cmd, env=vm.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "is empty (0 bytes)" in out.stderr and str(db) in out.stderr
