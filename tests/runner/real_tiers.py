"""Real engines for the tier acceptance tests: the archive, a Docker engine, the guest image.

Each is made once per test session. What cannot run on this host is a `pytest.skip` with
the exact reason (no `dockerd`, not root, the engine did not answer); everything else is a
failure. `OXYDRA_TEST_DOCKER_HOST` points at an engine CI already started (.ci/run);
`OXYDRA_TEST_GUEST_CACHE` (default /var/tmp/oxydra-guest-cache) keeps the Debian base
rootfs and the kernel between runs, so only the first run on a machine pays for them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_GUEST_CACHE = "/var/tmp/oxydra-guest-cache"


def guest_cache() -> Path:
    return Path(os.environ.get("OXYDRA_TEST_GUEST_CACHE") or DEFAULT_GUEST_CACHE)


def _answers(sock: Path) -> bool:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(2)
    try:
        client.connect(str(sock))
        client.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        return client.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def docker_engine(workdir: Path) -> Iterator[str]:
    """`$OXYDRA_TEST_DOCKER_HOST`, else a `dockerd` of our own (data and socket in workdir)."""
    given = os.environ.get("OXYDRA_TEST_DOCKER_HOST")
    if given:
        path = Path(given.removeprefix("unix://"))
        deadline = time.monotonic() + 60  # .ci/run starts it just before the tests
        while not _answers(path):
            if time.monotonic() > deadline:
                pytest.fail(f"OXYDRA_TEST_DOCKER_HOST={given} does not answer /_ping")
            time.sleep(0.2)
        yield given
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        pytest.skip("no dockerd on PATH (Debian: apt-get install docker.io; .ci/run does)")
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root to start here, and no OXYDRA_TEST_DOCKER_HOST is set")
    sock = workdir / "docker.sock"
    log = workdir / "dockerd.log"
    argv = [dockerd, "--data-root", str(workdir / "data"), "--exec-root", str(workdir / "x")]
    argv += ["--pidfile", str(workdir / "dockerd.pid"), "--host", f"unix://{sock}"]
    argv += ["--bridge=none", "--iptables=false", "--ip6tables=false"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _answers(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-1500:]
                pytest.skip(f"dockerd could not start on this host:\n{tail}")
            time.sleep(0.2)
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _unmount_under(workdir)


def _unmount_under(workdir: Path) -> None:
    """dockerd leaves its network namespace file (nsfs) mounted under its exec root."""
    prefix = f"{workdir}/"
    with open("/proc/self/mounts") as fh:
        points = [line.split()[1] for line in fh if line.split()[1].startswith(prefix)]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", point], check=False, capture_output=True)


def build_guest_image(archive: Path, docker_host: str | None, *, disk: bool) -> dict[str, str]:
    """`python -I oxydra.pyz runner image build`, as a user runs it; its `key=value` facts."""
    argv = [sys.executable, "-I", str(archive), "runner", "image", "build"]
    if docker_host is None:
        argv.append("--no-docker")
    if not disk:
        argv.append("--no-disk")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "OXYDRA_GUEST_CACHE": str(guest_cache()),
        **({"DOCKER_HOST": docker_host} if docker_host else {}),
    }
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def micro_vm_refusal() -> str | None:
    """Why a KVM microVM cannot boot here, or None when it should.

    `kvm-pvm` is a KVM for nested guests on CPUs without VMX/SVM (this CI machine is one:
    a Firecracker VM). Measured on it (docs/runner.md): a Debian kernel's bzImage stops in
    its decompressor after "Probing EDD"; booted through its PVH entry it runs ~2 minutes of
    early boot, then QEMU reports "KVM internal error. Suberror: 1 ... emulation failure"
    on `lock cmpxchg16b` (and, with cx16 hidden, on `xrstor`). OXYDRA_TEST_MICRO_VM=1
    tries anyway.
    """
    if os.environ.get("OXYDRA_TEST_MICRO_VM") == "1":
        return None
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "no usable /dev/kvm on this host"
    if shutil.which("qemu-system-x86_64") is None:
        return "no qemu-system-x86_64 (Debian: apt-get install qemu-system-x86; .ci/run does)"
    if os.geteuid() != 0:
        return "building the microVM disk (mke2fs -d with file owners) needs root"
    cpuinfo = Path("/proc/cpuinfo").read_text()
    hardware = " vmx" in cpuinfo or " svm" in cpuinfo
    if Path("/sys/module/kvm_pvm").exists() and not hardware:
        return (
            "this host's KVM is kvm-pvm (nested, no VMX/SVM): a Debian kernel does not boot "
            "under it (KVM internal error, Suberror 1: emulation failure on lock cmpxchg16b, "
            "then xrstor; see docs/runner.md)"
        )
    return None
