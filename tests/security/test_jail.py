"""Hostile tests for the workspace jail, under both openers (openat2 and the O_NOFOLLOW walk)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from oxydra.core.errors import PolicyError, ToolError
from oxydra.security import Openat2Opener, Opener, WalkOpener, Workspace, openat2_works
from tests.security.cases_jail import JAIL_CASES, MARKS, JailCase, Tree, run_case

OPENERS = [pytest.param(WalkOpener(), id="walk")]
if openat2_works():
    OPENERS.insert(0, pytest.param(Openat2Opener(), id="openat2"))


def test_openat2_is_available_on_this_kernel() -> None:
    assert openat2_works()


def test_the_case_table_holds_at_least_thirty_cases() -> None:
    assert len(JAIL_CASES) >= 30
    assert len({c.id for c in JAIL_CASES}) == len(JAIL_CASES)


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("case", JAIL_CASES, ids=lambda c: c.id)
def test_jail_case_gets_its_verdict_and_nothing_escapes(
    case: JailCase, opener: Opener, tmp_path: Path
) -> None:
    outcome = run_case(case, tmp_path, opener)
    assert not outcome.escaped, outcome.detail
    assert outcome.matches(case.expect), outcome.detail


@pytest.mark.parametrize("opener", OPENERS)
class TestJailDetails:
    def test_deleting_a_link_keeps_its_target(self, opener: Opener, tmp_path: Path) -> None:
        tree = Tree(tmp_path)
        tree.link("out", tree.outside / "secret.txt")
        assert Workspace.for_user(tree.ws, opener=opener).delete("out") == "symlink"
        assert (tree.outside / "secret.txt").read_text().startswith("OUTSIDE-SECRET")
        assert not (tree.shared / "out").is_symlink()

    def test_write_creates_parents_and_reports_bytes(self, opener: Opener, tmp_path: Path) -> None:
        tree = Tree(tmp_path)
        written = Workspace.for_user(tree.ws, opener=opener).write_text("/tmp/a/b/c.txt", "héllo")
        assert written == len("héllo".encode())
        assert (tree.ws / "tmp/a/b/c.txt").read_text() == "héllo"

    def test_errors_name_virtual_paths_only(self, opener: Opener, tmp_path: Path) -> None:
        tree = Tree(tmp_path)
        with pytest.raises(ToolError) as caught:
            Workspace.for_user(tree.ws, opener=opener).read_text("/shared/missing.txt")
        assert "/shared/missing.txt" in str(caught.value)
        assert str(tmp_path) not in str(caught.value)

    def test_search_reports_virtual_paths_and_line_numbers(
        self, opener: Opener, tmp_path: Path
    ) -> None:
        tree = Tree(tmp_path)
        (tree.shared / "notes" / "b.md").write_text("one\nfind me\nthree find me\n")
        hits = Workspace.for_user(tree.ws, opener=opener).search("/shared", "find me")
        assert [(h.path, h.line) for h in hits] == [
            ("/shared/notes/b.md", 2),
            ("/shared/notes/b.md", 3),
        ]

    def test_restricted_view_hides_other_mounts(self, opener: Opener, tmp_path: Path) -> None:
        tree = Tree(tmp_path)
        vault_only = Workspace.for_user(tree.ws, opener=opener).restricted(
            read=["/vault"], write=[]
        )
        assert vault_only.read_text("/vault/v.txt")[0] == "vault V"
        with pytest.raises(PolicyError):
            vault_only.read_text("/shared/a.md")
        with pytest.raises(PolicyError):
            vault_only.write_text("/vault/v.txt", "x")


def test_host_paths_in_text_become_virtual(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    workspace = Workspace.for_user(tree.ws)
    text = f"error at {tree.shared}/a.md: and {tree.ws}/tmp/x, but {tree.ws}/sharedX stays"
    assert workspace.to_virtual(text) == ("error at /shared/a.md: and /tmp/x, but /sharedX stays")


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("link_kind", ["absolute", "relative"])
def test_symlink_swapped_between_check_and_use_never_leaks(
    opener: Opener, link_kind: str, tmp_path: Path
) -> None:
    """A racer swaps `dir` and a link to outside while the jail reads `dir/f` (CVE-2018-15664)."""
    tree = Tree(tmp_path)
    (tree.shared / "dir").mkdir()
    (tree.shared / "dir" / "f").write_text("INSIDE")
    (tree.outside / "dir" / "f").write_text("OUTSIDE-SECRET swapped")
    target = tree.outside / "dir" if link_kind == "absolute" else "../../../outside/dir"
    os.symlink(str(target), tree.shared / "dir_link")
    workspace = Workspace.for_user(tree.ws, opener=opener)
    stop = threading.Event()

    def racer() -> None:
        s = tree.shared
        while not stop.is_set():
            os.rename(s / "dir", s / "dir_tmp")
            os.rename(s / "dir_link", s / "dir")
            os.rename(s / "dir", s / "dir_link")
            os.rename(s / "dir_tmp", s / "dir")

    thread = threading.Thread(target=racer)
    thread.start()
    outside_reads = inside_reads = 0
    try:
        # At least 2000 reads, and on until one saw the inside file: under load the racer can
        # hold the swapped state for a whole batch, and the check below must stay meaningful.
        for attempt in range(50_000):
            if attempt >= 2000 and inside_reads:
                break
            try:
                text, _ = workspace.read_text("dir/f")
            except (PolicyError, ToolError):
                continue
            outside_reads += any(mark in text for mark in MARKS)
            inside_reads += text == "INSIDE"
    finally:
        stop.set()
        thread.join()
    assert outside_reads == 0
    assert inside_reads > 0
