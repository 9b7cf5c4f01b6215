"""Workspace provisioning: the layout, owner-only modes, mounts, and refusals."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from oxydra.config.runner_schema import Mounts
from oxydra.core.errors import RunnerError
from oxydra.runner._workspace import LAYOUT, clear_stale, provision


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestProvision:
    def test_creates_the_layout_owner_only(self, tmp_path: Path) -> None:
        ws = provision(tmp_path / "root" / "alice")
        assert ws.root == (tmp_path / "root" / "alice").resolve()
        for name in LAYOUT:
            assert mode(ws.root / name) == 0o700, name
        assert mode(ws.root) == 0o700
        assert mode(ws.ipc / "bootstrap") == 0o700
        assert (ws.shared, ws.tmp, ws.vault) == (
            ws.root / "shared",
            ws.root / "tmp",
            ws.root / "vault",
        )

    def test_looser_modes_left_by_someone_are_tightened(self, tmp_path: Path) -> None:
        (tmp_path / "alice" / "shared").mkdir(parents=True)
        os.chmod(tmp_path / "alice", 0o755)
        os.chmod(tmp_path / "alice" / "shared", 0o777)
        ws = provision(tmp_path / "alice")
        assert mode(ws.root) == 0o700 and mode(ws.shared) == 0o700

    def test_is_idempotent_and_keeps_files(self, tmp_path: Path) -> None:
        ws = provision(tmp_path / "alice")
        (ws.shared / "keep.txt").write_text("x")
        assert provision(tmp_path / "alice") == ws
        assert (ws.shared / "keep.txt").read_text() == "x"

    def test_mounts_are_honoured_absolute_or_relative(self, tmp_path: Path) -> None:
        outside = tmp_path / "data" / "shared"
        ws = provision(tmp_path / "alice", Mounts(shared=str(outside), vault="secrets"))
        assert ws.shared == outside.resolve() and outside.is_dir()
        assert ws.vault == (tmp_path / "alice" / "secrets").resolve()
        assert mode(outside) == 0o700

    @pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a directory to another uid")
    def test_a_directory_owned_by_another_uid_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "alice").mkdir()
        os.chown(tmp_path / "alice", 4242, 4242)
        with pytest.raises(RunnerError, match="owned by uid 4242"):
            provision(tmp_path / "alice")

    def test_a_file_where_a_directory_belongs_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "alice").mkdir()
        (tmp_path / "alice" / "ipc").write_text("not a dir")
        with pytest.raises(RunnerError, match="not a directory"):
            provision(tmp_path / "alice")


def test_clear_stale_removes_the_marker_and_keeps_the_rest(tmp_path: Path) -> None:
    ws = provision(tmp_path / "alice")
    ws.gateway_marker.write_text("ws://127.0.0.1:1/ws\n")
    ws.gateway_token_file.write_text("tok\n")
    clear_stale(ws)
    assert not ws.gateway_marker.exists() and ws.gateway_token_file.exists()
