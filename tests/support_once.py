"""Build an expensive test artifact (the archive) once per test run, for every xdist worker."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


def once_per_run(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """`<run dir>/<name>/`, filled by `build(dir)` in the first worker that asks.

    The run dir is the one pytest-xdist workers share (the parent of a worker's base temp);
    without xdist it is the session's own base temp. The others wait on a lock, then reuse the
    result; a failed build leaves no stamp, so the next worker tries (and fails) too.
    """
    base = factory.getbasetemp()
    run = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    target, stamp = run / name, run / f"{name}.built"
    with open(run / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            target.mkdir(exist_ok=True)
            build(target)
            stamp.touch()
    return target


ROOT = Path(__file__).resolve().parents[1]


def built_archive(factory: pytest.TempPathFactory) -> Path:
    """`oxydra.pyz` as `build_pyz.py` makes it with the default extras, built once per run."""
    return once_per_run(factory, "dist", _build_archive) / "oxydra.pyz"


def _build_archive(dist: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "build_pyz.py"), "--output", str(dist / "oxydra.pyz")],
        check=True,
        capture_output=True,
        timeout=600,
    )
