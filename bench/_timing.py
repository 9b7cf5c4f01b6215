"""Small timing helpers shared by the benchmarks."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import time
from collections.abc import Sequence


def run_median(cmd: Sequence[str], runs: int, env: dict[str, str] | None = None) -> float:
    """Median wall time in seconds of `runs` runs of a command (output discarded)."""
    return run_stats(cmd, runs, env)[0]


def run_stats(
    cmd: Sequence[str], runs: int, env: dict[str, str] | None = None, cwd: str | None = None
) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system, the command and its children).

    On a shared machine the CPU figure moves far less with the load than the wall time.
    `cwd` is the directory the command runs in (default: this process's).
    """
    times, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            cmd,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times), statistics.median(cpus)


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct` percentile (0-100) of `values`, nearest-rank."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]
