"""Fixtures for tool tests: a real workspace on disk and a per-call context."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxydra.security import Workspace
from oxydra.tools import LocalFileBackend, ToolExecutionContext


@pytest.fixture
def ws_root(tmp_path: Path) -> Path:
    """alice's workspace root with shared/, tmp/, vault/ and a few files."""
    root = tmp_path / "users" / "alice"
    for sub in ("shared", "tmp", "vault", ".oxydra"):
        (root / sub).mkdir(parents=True)
    (root / "shared" / "notes.md").write_text("alpha\nbeta\ngamma beta\n")
    (root / "vault" / "doc.txt").write_text("vault document")
    (root / ".oxydra" / "agent.toml").write_text("OXYDRA-PRIVATE")
    (tmp_path / "outside.txt").write_text("OUTSIDE-SECRET")
    return root


@pytest.fixture
def workspace(ws_root: Path) -> Workspace:
    """The jail over alice's workspace."""
    return Workspace.for_user(ws_root)


@pytest.fixture
def ctx(workspace: Workspace) -> ToolExecutionContext:
    """A context for one call in session s1."""
    return ToolExecutionContext(
        user_id="alice", session_id="s1", workspace=LocalFileBackend(workspace)
    )
