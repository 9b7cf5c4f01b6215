"""`[tools] isolation`: which file backend an agent gets, and the fallback without wasmtime."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import msgspec
import pytest

from oxydra.config.schema import AgentConfig, ToolsConfig
from oxydra.core.errors import MissingExtraError
from oxydra.runtime.factory import build_agent, provision_workspace
from oxydra.runtime.registry_tools import RegistryExecutor
from oxydra.security import Workspace
from oxydra.security.wasm import WasmSandbox, wasm_unavailable_reason
from oxydra.tools import LocalFileBackend, WasmFileBackend, select_file_backend

pytest.importorskip("wasmtime")


@pytest.fixture
def no_wasmtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `wasmtime` unimportable, as on an install without the wasm extra."""
    monkeypatch.setitem(sys.modules, "wasmtime", None)


class TestSelection:
    def test_auto_is_the_default_and_picks_the_guest(self, workspace: Workspace) -> None:
        assert ToolsConfig().isolation == "auto"
        assert isinstance(select_file_backend(workspace), WasmFileBackend)

    @pytest.mark.parametrize(
        ("isolation", "kind"), [("wasm", WasmFileBackend), ("process", LocalFileBackend)]
    )
    def test_an_explicit_choice_is_kept(
        self, workspace: Workspace, isolation: str, kind: type
    ) -> None:
        assert isinstance(select_file_backend(workspace, isolation), kind)  # type: ignore[arg-type]

    def test_an_unknown_value_is_a_config_error(self) -> None:
        with pytest.raises(msgspec.ValidationError, match="isolation"):
            msgspec.convert({"isolation": "container"}, ToolsConfig)

    def test_build_agent_gives_the_tools_the_guest(self, tmp_path: Path) -> None:
        root = provision_workspace(tmp_path / "alice")
        agent = build_agent(AgentConfig(), workspace=root, environ={"OPENAI_API_KEY": "k"})
        executor = agent.runtime.tools
        assert isinstance(executor, RegistryExecutor)
        assert isinstance(executor.backend_for("alice"), WasmFileBackend)


class TestWithoutWasmtime:
    @pytest.mark.usefixtures("no_wasmtime")
    def test_auto_falls_back_to_the_jail_and_says_which_extra(
        self, workspace: Workspace, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING):
            backend = select_file_backend(workspace, "auto")
        assert isinstance(backend, LocalFileBackend)
        assert "pip install 'oxydra[wasm]'" in caplog.text

    @pytest.mark.usefixtures("no_wasmtime")
    def test_asking_for_wasm_names_the_extra_instead_of_an_import_error(
        self, workspace: Workspace
    ) -> None:
        assert "oxydra[wasm]" in str(wasm_unavailable_reason())
        with pytest.raises(MissingExtraError, match=r"oxydra\[wasm\]"):
            select_file_backend(workspace, "wasm")
        with pytest.raises(MissingExtraError):
            WasmSandbox()


class TestThroughTheBackend:
    async def test_vault_copy_runs_as_two_guests_with_their_own_roots(
        self, workspace: Workspace, ws_root: Path
    ) -> None:
        backend = WasmFileBackend.for_workspace(workspace)
        vault = backend.restricted(read=["/vault"], write=[])
        assert await vault.read_bytes("/vault/doc.txt", max_bytes=100) == (b"vault document", False)
        writable = backend.restricted(read=[], write=["/shared", "/tmp"])
        assert await writable.write_bytes("/tmp/copy.txt", b"vault document") == 14
        assert (ws_root / "tmp" / "copy.txt").read_text() == "vault document"
        assert backend.to_virtual(f"see {ws_root}/tmp/copy.txt") == "see /tmp/copy.txt"
