"""`oxydra skills`: the operator sees every copy with its source, status, hash and flags,
and approves a draft into use."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from oxydra.tools.skills import write_draft

DATA = Path(__file__).resolve().parents[1] / "data" / "skills"


def oxydra(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    cmd = [sys.executable, "-m", "oxydra", "skills", *args, "--workspace", str(home / "ws")]
    return subprocess.run(cmd, env=env, cwd=home, capture_output=True, text=True, check=False)


def test_list_check_show_and_approve(tmp_path: Path) -> None:
    shutil.copytree(DATA / "agentskills", tmp_path / ".oxydra" / "skills")
    write_draft(tmp_path / "ws" / "skills", "weekly-report", "Weekly report", "Steps.", "u")
    listed = oxydra(tmp_path, "list")
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith("pdf-forms"))
    assert "active" in line and str(tmp_path / ".oxydra" / "skills") in line
    assert "scripts=1" in line and "env=PDF_FONT_DIR" in line
    assert "weekly-report  draft  draft" in listed.stdout
    assert "skill-authoring  active  builtin" in listed.stdout

    check = oxydra(tmp_path, "check")
    assert "pending: weekly-report awaits `oxydra skills approve weekly-report`" in check.stdout

    approved = oxydra(tmp_path, "approve", "weekly-report")
    assert approved.returncode == 0 and approved.stdout.startswith("approved weekly-report sha256 ")
    shown = oxydra(tmp_path, "show", "weekly-report")
    assert "weekly-report (active)" in shown.stdout and "source managed" in shown.stdout

    skill_md = tmp_path / "ws" / "skills" / "weekly-report" / "SKILL.md"
    skill_md.write_text(skill_md.read_text() + "tampered\n")
    check = oxydra(tmp_path, "check")
    assert check.returncode == 1
    assert "error: weekly-report (managed): changed since approval" in check.stdout
