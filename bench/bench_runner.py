"""Runner figures: guest start per tier, shell daemon round trip, control socket round trip.

Run from the repository root: `python -m bench runner` (or through `make bench`). Prints
figures; asserts nothing. Each part runs real processes in a throwaway HOME:

1. process tier: wall time of `oxydra runner --insecure start` (it returns once the guest's
   gateway marker exists), from source and, when `dist/oxydra.pyz` exists, from the archive
   (warm native cache); median of a few starts, each followed by `runner stop`;
2. control socket: `health_check` round trips to the running daemon (median, p99);
3. shell daemon: `DaemonShellSession.run("true")` round trips against a real
   `oxydra shell-daemon` (median, p99), next to a `LocalShellSession` doing the same.
The container and micro_vm tiers cannot be timed here: no Docker engine or Firecracker.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._timing import percentile  # noqa: E402

STARTS = 5
ROUND_TRIPS = 200
GUEST_ENV = {
    "API_KEY": "bench",
    "OXYDRA__SELECTION__PROVIDER": "bench",
    "OXYDRA__SELECTION__MODEL": "bench-model",
    "OXYDRA__PROVIDERS__REGISTRY__BENCH__PROVIDER_TYPE": "openai",
    "OXYDRA__PROVIDERS__REGISTRY__BENCH__BASE_URL": "http://127.0.0.1:9",
    "OXYDRA__CATALOG__SKIP_CATALOG_VALIDATION": "true",
}


def _runner(cmd: list[str], home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        **GUEST_ENV,
    }
    return subprocess.run(
        [*cmd, "runner", *args], env=env, cwd=home, capture_output=True, text=True, check=False
    )


def guest_starts(cmd: list[str], label: str) -> Path | None:
    """Median `runner start` time; leaves one guest running and returns its HOME."""
    home = Path(tempfile.mkdtemp(prefix="oxydra-bench-"))
    times = []
    for n in range(STARTS):
        start = time.perf_counter()
        out = _runner(cmd, home, "--insecure", "start")
        times.append(time.perf_counter() - start)
        if out.returncode != 0:
            print(f"{label}: start failed: {out.stderr.strip()[:300]}")
            return None
        hardening = [ln for ln in out.stdout.splitlines() if ln.startswith("hardening=")]
        if n < STARTS - 1:
            _runner(cmd, home, "stop")
    median = statistics.median(times) * 1000
    print(f"process tier start ({label}):  median {median:7.1f} ms  ({hardening[0]})")
    return home


def control_round_trips(home: Path) -> None:
    from oxydra.runner._control import control_request
    from oxydra.wire.control import HealthCheckRequest

    sock = home / ".oxydra" / "workspaces" / "default" / "ipc" / "runner-control.sock"
    times = []
    for _ in range(ROUND_TRIPS):
        start = time.perf_counter()
        control_request(sock, HealthCheckRequest())
        times.append(time.perf_counter() - start)
    print(
        f"control socket health_check:    median {statistics.median(times) * 1000:7.3f} ms"
        f"  p99 {percentile(times, 99) * 1000:7.3f} ms"
    )


async def _shell_round_trips(session: object) -> list[float]:
    times = []
    for _ in range(ROUND_TRIPS // 2):
        start = time.perf_counter()
        await session.run("true", timeout=10)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - start)
    await session.close()  # type: ignore[attr-defined]
    return times


def _local_session(tmp: str) -> object:
    from oxydra.security.confine import shell_sandbox
    from oxydra.tools import LocalShellSession

    sandbox, _ = shell_sandbox((tmp,), allow_unconfined=True)
    assert sandbox is not None
    return LocalShellSession(tmp, sandbox=sandbox)


def shell_round_trips() -> None:
    from oxydra.tools import DaemonShellSession

    with tempfile.TemporaryDirectory() as tmp:
        sock = Path(tmp) / "shell.sock"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "oxydra",
                "shell-daemon",
                "--socket",
                str(sock),
                "--writable",
                tmp,
            ],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert proc.stderr is not None
        proc.stderr.readline()
        try:
            daemon = asyncio.run(_shell_round_trips(DaemonShellSession(str(sock))))
        finally:
            proc.terminate()
            proc.wait()
            proc.stderr.close()
        local = asyncio.run(_shell_round_trips(_local_session(tmp)))
    for label, times in (("shell daemon", daemon), ("local session", local)):
        print(
            f"shell_exec 'true' via {label + ':':15s} "
            f"median {statistics.median(times) * 1000:7.2f} ms"
            f"  p99 {percentile(times, 99) * 1000:7.2f} ms"
        )


def main() -> None:
    source = [sys.executable, "-m", "oxydra"]
    home = guest_starts(source, "source")
    if home is not None:
        control_round_trips(home)
        _runner(source, home, "stop")
        shutil.rmtree(home, ignore_errors=True)
    pyz = ROOT / "dist" / "oxydra.pyz"
    if pyz.exists():
        base = str(Path(sys.base_prefix) / "bin" / "python3")
        subprocess.run([base, "-I", str(pyz), "--help"], capture_output=True, check=False)
        home = guest_starts([base, "-I", str(pyz)], "oxydra.pyz")
        if home is not None:
            _runner([base, "-I", str(pyz)], home, "stop")
            shutil.rmtree(home, ignore_errors=True)
    else:
        print("dist/oxydra.pyz missing: run `make pyz` for the archive's figure")
    shell_round_trips()


if __name__ == "__main__":
    main()
