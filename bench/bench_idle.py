"""Idle `vm` memory: the venv against one or more archives, in interleaved rounds.

Each round starts every variant once in turn, with a fresh HOME (so an archive unpacks into
an empty cache, as the gateway bench does) and then again over the cache that start left
("warm"); the RSS of the `vm`'s process tree is read 1 s after the endpoint marker appears,
with the share that is the Python heap and other anonymous memory (`/proc/PID/smaps_rollup`),
the modules loaded, and the `vm`'s CPU time up to that point.

`OXYDRA_BENCH_PYZS` lists archives, comma-separated (default `dist/oxydra.pyz`); a name
prefixed `venv` or an empty list item stands for the venv. `OXYDRA_BENCH_ROUNDS` (default 5).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._procs import start_fake_llm, stop
from bench.bench_gateway import TEXT, TOKEN, _rss_tree, _sets

PROBE_MODULES = "import sys; print(len(sys.modules))"


def _smaps(pid: int) -> dict[str, int]:
    """KiB by field of /proc/PID/smaps_rollup (Rss, Anonymous, ...)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0])
    return out


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _one(variant: str, home: Path, ws: Path, url: str) -> tuple[float, float, float]:
    """Start a `vm`, wait for its marker and 1 s; (tree RSS MiB, anon MiB, CPU s)."""
    if variant == "venv":
        start = [sys.executable, "-m", "oxydra"]
    else:
        start = [str(Path(sys.base_prefix) / "bin" / "python3"), "-I", variant]
    cmd = [*start, "vm", "--user-id", "bench", "--workspace-root", str(ws)]
    for item in _sets(url):
        cmd += ["--set", item]
    env = {**os.environ, "HOME": str(home), "OXYDRA__GATEWAY__AUTH_TOKEN": TOKEN}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    marker = ws / "ipc" / "gateway-endpoint"
    try:
        while not marker.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"{variant}: vm exited with {proc.returncode}")
            time.sleep(0.05)
        time.sleep(1.0)
        rss, _ = _rss_tree(proc.pid)
        anon = _smaps(proc.pid).get("Anonymous", 0) / 1024
        return rss, anon, _cpu(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
        marker.unlink(missing_ok=True)


def main() -> None:
    rounds = int(os.environ.get("OXYDRA_BENCH_ROUNDS", "5"))
    listed = os.environ.get("OXYDRA_BENCH_PYZS", "venv,dist/oxydra.pyz").split(",")
    variants = ["venv" if not v or v.startswith("venv") else str(Path(v).resolve()) for v in listed]
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fake, url = start_fake_llm(tmp, [TEXT])
        try:
            for _ in range(rounds):
                for variant in variants:
                    home, ws = tmp / "home", tmp / "ws"
                    for state in ("fresh", "warm"):
                        results.setdefault((variant, state), []).append(
                            _one(variant, home, ws, url)
                        )
                    shutil.rmtree(home, ignore_errors=True)
                    shutil.rmtree(ws, ignore_errors=True)
        finally:
            stop(fake)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(f"idle vm, medians of {rounds} interleaved rounds (tree RSS / anonymous / start CPU):")
    for (variant, state), runs in results.items():
        rss, anon, cpu = (statistics.median(r[i] for r in runs) for i in range(3))
        low, high = min(r[0] for r in runs), max(r[0] for r in runs)
        name = variant if variant == "venv" else os.path.relpath(variant)
        print(
            f"  {name:<34} {state:<5} {rss:6.1f} MiB (range {low:5.1f}-{high:5.1f})"
            f"  anon {anon:5.1f} MiB  CPU {cpu * 1000:5.0f} ms"
        )


if __name__ == "__main__":
    main()
