"""`oxydra persona show`: which file won, its hash and its size against the budget."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path


def test_persona_show_names_the_winner_its_hash_and_what_it_shadows(tmp_path: Path) -> None:
    home, ws = tmp_path / "h", tmp_path / "ws"
    (home / ".config" / "oxydra").mkdir(parents=True)
    (home / ".oxydra").mkdir(parents=True)
    (ws / ".oxydra").mkdir(parents=True)
    (home / ".config" / "oxydra" / "SOUL.md").write_text("old")
    (home / ".oxydra" / "SOUL.md").write_text("You are Ada.")
    (ws / ".oxydra" / "USER.md").write_text("Prefers metric.")
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    cmd = [sys.executable, "-m", "oxydra", "persona", "show", "--workspace", str(ws)]
    out = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    digest = hashlib.sha256(b"You are Ada.").hexdigest()
    assert f"SOUL.md: {home / '.oxydra' / 'SOUL.md'}\n  sha256 {digest}\n" in out.stdout
    assert "size 12 of 20000 bytes" in out.stdout
    assert f"shadows {home / '.config' / 'oxydra' / 'SOUL.md'}" in out.stdout
    assert "SYSTEM.md: not found" in out.stdout
    assert f"USER.md: {ws / '.oxydra' / 'USER.md'}" in out.stdout
