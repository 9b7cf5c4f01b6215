"""Fixtures of the memory tests: real database files in a temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxydra.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's database lives (not created yet)."""
    return tmp_path / "state" / "memory.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[MemoryStore]:
    """An open store with the hashed embedder and a session `s1` owned by `alice`."""
    opened = MemoryStore(db_path)
    opened.events.create_session("s1", user_id="alice")
    yield opened
    opened.close()


def python_process(code: str, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    """Start `python -c code args...` with this worktree importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[arg-type]
    )
