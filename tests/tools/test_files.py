"""Built-in file tools through the registry, on a real temp workspace.

Every test runs twice: with the in-process jail and with the WASM guest as the file backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oxydra.security import Scrubber, Workspace
from oxydra.security.wasm import wasm_unavailable_reason
from oxydra.tools import (
    FILE_TOOLS,
    FileBackend,
    LocalFileBackend,
    ToolExecutionContext,
    ToolRegistry,
    WasmFileBackend,
)

BACKENDS = [
    "process",
    pytest.param(
        "wasm", marks=pytest.mark.skipif(bool(wasm_unavailable_reason()), reason="no wasm")
    ),
]


@pytest.fixture(params=BACKENDS)
def ctx(request: pytest.FixtureRequest, workspace: Workspace) -> ToolExecutionContext:
    """A context whose file backend is the jail or the WASM guest."""
    backend: FileBackend = (
        LocalFileBackend(workspace)
        if request.param == "process"
        else WasmFileBackend.for_workspace(workspace)
    )
    return ToolExecutionContext(user_id="alice", session_id="s1", workspace=backend)


@pytest.fixture
def reg() -> ToolRegistry:
    registry = ToolRegistry(scrubber=Scrubber())
    registry.register_all(FILE_TOOLS)
    return registry


async def call(
    reg: ToolRegistry, ctx: ToolExecutionContext, name: str, **args: object
) -> tuple[bool, str]:
    result = await reg.execute(name, args, ctx)
    return result.ok, result.text


class TestReadListSearch:
    async def test_read(self, reg: ToolRegistry, ctx: ToolExecutionContext) -> None:
        assert await call(reg, ctx, "file_read", path="/shared/notes.md") == (
            True,
            "alpha\nbeta\ngamma beta\n",
        )

    async def test_relative_paths_are_under_shared(
        self, reg: ToolRegistry, ctx: ToolExecutionContext
    ) -> None:
        assert (await call(reg, ctx, "file_read", path="notes.md"))[0]

    async def test_list_defaults_to_shared(
        self, reg: ToolRegistry, ctx: ToolExecutionContext, ws_root: Path
    ) -> None:
        (ws_root / "shared" / "sub").mkdir()
        assert await call(reg, ctx, "file_list") == (True, "notes.md\nsub/")

    async def test_list_empty_dir(self, reg: ToolRegistry, ctx: ToolExecutionContext) -> None:
        assert await call(reg, ctx, "file_list", path="/tmp") == (True, "no entries found")

    async def test_search_reports_virtual_path_and_line(
        self, reg: ToolRegistry, ctx: ToolExecutionContext
    ) -> None:
        ok, text = await call(reg, ctx, "file_search", path="/shared", query="beta")
        assert ok and text == "/shared/notes.md:2:beta\n/shared/notes.md:3:gamma beta"

    async def test_search_a_single_file(self, reg: ToolRegistry, ctx: ToolExecutionContext) -> None:
        ok, text = await call(reg, ctx, "file_search", path="notes.md", query="alpha")
        assert ok and text == "/shared/notes.md:1:alpha"

    async def test_search_without_hits(self, reg: ToolRegistry, ctx: ToolExecutionContext) -> None:
        assert await call(reg, ctx, "file_search", path="/shared", query="zzz") == (
            True,
            "no matches found",
        )

    async def test_missing_file_is_a_failure_with_a_virtual_path(
        self, reg: ToolRegistry, ctx: ToolExecutionContext, ws_root: Path
    ) -> None:
        ok, text = await call(reg, ctx, "file_read", path="/shared/nope.md")
        assert not ok and "/shared/nope.md does not exist" in text and str(ws_root) not in text


class TestWriteEditDelete:
    async def test_write_creates_parents(
        self, reg: ToolRegistry, ctx: ToolExecutionContext, ws_root: Path
    ) -> None:
        ok, text = await call(reg, ctx, "file_write", path="/tmp/a/b.txt", content="héllo")
        assert (ok, text) == (True, "wrote 6 bytes to /tmp/a/b.txt")
        assert (ws_root / "tmp/a/b.txt").read_text() == "héllo"

    async def test_edit_replaces_exactly_one(
        self, reg: ToolRegistry, ctx: ToolExecutionContext, ws_root: Path
    ) -> None:
        ok, _ = await call(
            reg, ctx, "file_edit", path="notes.md", old_text="alpha", new_text="ALPHA"
        )
        assert ok and (ws_root / "shared/notes.md").read_text().startswith("ALPHA\n")

    @pytest.mark.parametrize(
        ("old", "fragment"), [("zeta", "was not found"), ("beta", "matched 2 locations")]
    )
    async def test_edit_needs_a_unique_match(
        self, reg: ToolRegistry, ctx: ToolExecutionContext, ws_root: Path, old: str, fragment: str
    ) -> None:
        ok, text = await call(reg, ctx, "file_edit", path="notes.md", old_text=old, new_text="x")
        assert not ok and fragment in text
        assert (ws_root / "shared/notes.md").read_text() == "alpha\nbeta\ngamma beta\n"

    async def test_delete_file_and_tree(
        self, reg: ToolRegistry, ctx: ToolExecutionContext, ws_root: Path
    ) -> None:
        (ws_root / "tmp/d/e").mkdir(parents=True)
        assert await call(reg, ctx, "file_delete", path="/tmp/d") == (
            True,
            "deleted directory /tmp/d",
        )
        assert await call(reg, ctx, "file_delete", path="notes.md") == (
            True,
            "deleted file notes.md",
        )
        assert not (ws_root / "tmp/d").exists()

    async def test_vault_is_read_only(self, reg: ToolRegistry, ctx: ToolExecutionContext) -> None:
        result = await reg.execute("file_write", {"path": "/vault/x", "content": "y"}, ctx)
        assert result.error_kind == "policy"


class TestVaultCopy:
    async def test_copies_out_of_the_vault(
        self, reg: ToolRegistry, ctx: ToolExecutionContext, ws_root: Path
    ) -> None:
        ok, text = await call(
            reg, ctx, "vault_copyto", source_path="/vault/doc.txt", destination_path="/shared/d.txt"
        )
        assert ok and text == "copied 14 bytes from /vault/doc.txt to /shared/d.txt"
        assert (ws_root / "shared/d.txt").read_text() == "vault document"

    @pytest.mark.parametrize(
        ("source", "destination"),
        [
            ("/shared/notes.md", "/tmp/x"),
            ("/vault/doc.txt", "/vault/copy.txt"),
            ("/vault/../.oxydra/agent.toml", "/tmp/x"),
            ("/vault/doc.txt", "/shared/../../x"),
        ],
    )
    async def test_each_step_sees_only_its_own_roots(
        self, reg: ToolRegistry, ctx: ToolExecutionContext, source: str, destination: str
    ) -> None:
        result = await reg.execute(
            "vault_copyto", {"source_path": source, "destination_path": destination}, ctx
        )
        assert result.error_kind == "policy"


class TestJailThroughTools:
    @pytest.mark.parametrize(
        ("name", "args"),
        [
            ("file_read", {"path": "../outside.txt"}),
            ("file_read", {"path": "/etc/passwd"}),
            ("file_read", {"path": "/shared/../../../outside.txt"}),
            ("file_list", {"path": "/shared/.."}),
            ("file_search", {"path": "/", "query": "SECRET"}),
            ("file_write", {"path": "../../outside.txt", "content": "x"}),
            ("file_delete", {"path": "/shared"}),
            ("file_read", {"path": "a\x00b"}),
        ],
    )
    async def test_escapes_are_refused_by_policy(
        self, reg: ToolRegistry, ctx: ToolExecutionContext, name: str, args: dict[str, object]
    ) -> None:
        result = await reg.execute(name, args, ctx)
        assert result.error_kind == "policy" and "OUTSIDE-SECRET" not in result.text

    async def test_symlink_out_is_refused(
        self, reg: ToolRegistry, ctx: ToolExecutionContext, ws_root: Path
    ) -> None:
        os.symlink(ws_root.parent.parent / "outside.txt", ws_root / "shared" / "link")
        result = await reg.execute("file_read", {"path": "link"}, ctx)
        assert result.error_kind == "policy"
