"""Tainted workspace files and the audit log: persisted, bounded, failing closed."""

from __future__ import annotations

import json
from pathlib import Path

from oxydra.core import untrusted
from oxydra.security.taint_state import AuditEntry, AuditLog, TaintedPaths, virtual_path

WEB = untrusted("web_fetch", "https://evil.test/")


class TestTaintedPaths:
    def test_a_tainted_write_survives_a_restart(self, tmp_path: Path) -> None:
        table = tmp_path / ".oxydra" / "tainted_paths.json"
        TaintedPaths(table).record("notes/a.md", WEB)
        again = TaintedPaths(table)
        assert again.label_for("/shared/notes/a.md") == WEB
        assert again.label_for("/shared/notes") == WEB  # a search of the folder reads it
        assert again.label_for("/shared/other.md") is None

    def test_a_trusted_whole_write_clears_but_an_edit_does_not(self, tmp_path: Path) -> None:
        paths = TaintedPaths(tmp_path / "t.json")
        paths.record("/shared/a.md", WEB)
        paths.record("/shared/a.md", None, whole_file=False)
        assert paths.label_for("/shared/a.md") == WEB
        paths.record("/shared/a.md", None)
        assert paths.label_for("/shared/a.md") is None

    def test_deleting_a_folder_forgets_its_files(self, tmp_path: Path) -> None:
        paths = TaintedPaths(tmp_path / "t.json")
        paths.record("/shared/dir/a.md", WEB)
        paths.forget("/shared/dir")
        assert len(paths) == 0

    def test_a_damaged_table_taints_the_whole_workspace(self, tmp_path: Path) -> None:
        table = tmp_path / "t.json"
        table.write_text("{not json")
        label = TaintedPaths(table).label_for("/shared/anything.md")
        assert label is not None and label.untrusted

    def test_past_the_cap_new_taint_covers_everything(self, tmp_path: Path) -> None:
        paths = TaintedPaths(tmp_path / "t.json", max_entries=2)
        for name in ("a", "b", "c"):
            paths.record(f"/shared/{name}", WEB)
        assert paths.label_for("/shared/never-written") == WEB

    def test_a_shell_command_naming_a_tainted_file_is_tainted(self, tmp_path: Path) -> None:
        paths = TaintedPaths(tmp_path / "t.json")
        paths.record("/shared/page.html", WEB)
        assert paths.mentioned_in("cat page.html | wc -l") == WEB
        assert paths.mentioned_in("ls -la") is None

    def test_paths_are_canonical(self) -> None:
        assert virtual_path("a/../b.md") == "/shared/b.md"
        assert virtual_path("/tmp//x/./y") == "/tmp/x/y"


def test_the_audit_log_appends_one_json_line_per_gated_call(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "logs" / "taint-audit.jsonl")
    for answer in ("approved", "denied"):
        log.append(
            AuditEntry(
                at="2026-01-01T00:00:00.000+00:00", user_id="u", session_id="s",
                tool="shell_exec", impact="external_effect", action="approve", answer=answer,
                sources=("web_fetch https://evil.test/",), arguments={"command": "ls"},
            )
        )  # fmt: skip
    lines = (tmp_path / "logs" / "taint-audit.jsonl").read_text().splitlines()
    assert [json.loads(line)["answer"] for line in lines] == ["approved", "denied"]
    assert (tmp_path / "logs" / "taint-audit.jsonl").stat().st_mode & 0o777 == 0o600
