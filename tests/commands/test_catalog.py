"""`oxydra catalog fetch | verify | show` against a loopback server."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from oxydra.catalog import pinned_bytes
from oxydra.commands.catalog import run_catalog_command
from oxydra.config.schema import AgentConfig, CatalogConfig, ProviderEntry, ProvidersConfig
from oxydra.testing.fake_llm import FakeLLM

ROOT = Path(__file__).resolve().parents[2]


class Server:
    """The fake server on its own loop in a thread, since the commands are synchronous."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.llm = FakeLLM()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FakeLLM:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.llm.start(), self.loop).result(5)
        return self.llm

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.llm.close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def server() -> Iterator[FakeLLM]:
    with Server() as llm:
        yield llm


def config(url: str, pinned_url: str | None = None, gemini: bool = False) -> AgentConfig:
    registry = {
        "openai": ProviderEntry(provider_type="openai", api_key_env="OPENAI_API_KEY"),
        "anthropic": ProviderEntry(provider_type="anthropic", api_key_env="ANTHROPIC_API_KEY"),
    }
    if gemini:
        registry["g"] = ProviderEntry(provider_type="gemini")
    return AgentConfig(
        catalog=CatalogConfig(url=url, pinned_url=pinned_url),
        providers=ProvidersConfig(registry=registry),
    )


def run(
    argv: list[str], cfg: AgentConfig, home: Path, cwd: Path | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_catalog_command(
        argv, cfg, {"HOME": str(home)}, stdout=out, stderr=err, cwd=cwd or home
    )
    return code, out.getvalue(), err.getvalue()


def cache(home: Path) -> dict[str, object]:
    return msgspec.json.decode((home / ".config/oxydra/model_catalog.json").read_bytes())


class TestFetch:
    def test_fetch_keeps_configured_providers_and_writes_the_user_cache(
        self, server: FakeLLM, tmp_path: Path
    ) -> None:
        server.add_route("/api.json", pinned_bytes())
        code, out, _ = run(["fetch"], config(f"{server.base_url}/api.json"), tmp_path)
        assert code == 0 and "wrote 65 models of 2 providers" in out
        assert sorted(cache(tmp_path)) == ["anthropic", "openai"]

    def test_fetch_all_keeps_every_provider(self, server: FakeLLM, tmp_path: Path) -> None:
        server.add_route("/api.json", pinned_bytes())
        assert run(["fetch", "--all"], config(f"{server.base_url}/api.json"), tmp_path)[0] == 0
        assert sorted(cache(tmp_path)) == ["anthropic", "google", "openai"]

    def test_fetch_pinned_uses_the_pinned_url(self, server: FakeLLM, tmp_path: Path) -> None:
        server.add_route("/pinned.json", pinned_bytes())
        cfg = config(
            f"{server.base_url}/missing.json",
            pinned_url=f"{server.base_url}/pinned.json",
            gemini=True,
        )
        code, _, _ = run(
            ["fetch", "--pinned", "--output", str(tmp_path / "out.json")], cfg, tmp_path
        )
        assert code == 0
        assert sorted(msgspec.json.decode((tmp_path / "out.json").read_bytes())) == [
            "anthropic",
            "google",
            "openai",
        ]

    def test_fetch_pinned_without_a_pinned_url_is_an_error(self, tmp_path: Path) -> None:
        code, _, err = run(["fetch", "--pinned"], config("http://127.0.0.1:1/x"), tmp_path)
        assert code == 2 and "pinned_url" in err

    @pytest.mark.parametrize("body", [b"<html>nope</html>", b'{"p": {"id": "p", "models": {}}}'])
    def test_invalid_download_leaves_the_cache_alone(
        self, server: FakeLLM, tmp_path: Path, body: bytes
    ) -> None:
        server.add_route("/api.json", body)
        code, _, err = run(["fetch"], config(f"{server.base_url}/api.json"), tmp_path)
        assert code == 2 and "error" in err
        assert not (tmp_path / ".config/oxydra/model_catalog.json").exists()

    def test_http_error_is_reported(self, server: FakeLLM, tmp_path: Path) -> None:
        code, _, err = run(["fetch"], config(f"{server.base_url}/absent.json"), tmp_path)
        assert code == 2 and "HTTP 404" in err

    def test_update_pinned_rewrites_the_top_level_catalog_directory(
        self, server: FakeLLM, tmp_path: Path
    ) -> None:
        pinned = ROOT / "catalog" / "pinned_model_catalog.json"
        before = pinned.read_bytes()
        inode = pinned.stat().st_ino
        server.add_route("/api.json", before)  # the same snapshot: the tree is left unchanged
        code, out, _ = run(
            ["fetch", "--all", "--update-pinned"], config(f"{server.base_url}/api.json"), tmp_path
        )
        assert code == 0 and str(pinned) in out
        assert pinned.read_bytes() == before and pinned.stat().st_ino != inode
        assert not (tmp_path / ".config/oxydra/model_catalog.json").exists()

    def test_update_pinned_and_output_are_exclusive(self, tmp_path: Path) -> None:
        argv = ["fetch", "--update-pinned", "--output", str(tmp_path / "x.json")]
        assert run(argv, config("http://127.0.0.1:9/api.json"), tmp_path)[0] == 2


class TestVerify:
    def test_identical_remote_passes(self, server: FakeLLM, tmp_path: Path) -> None:
        server.add_route("/api.json", pinned_bytes())
        code, out, _ = run(["verify"], config(f"{server.base_url}/api.json"), tmp_path)
        assert code == 0 and "matches" in out

    def test_drift_is_listed_and_fails(self, server: FakeLLM, tmp_path: Path) -> None:
        data = msgspec.json.decode(pinned_bytes())
        del data["openai"]["models"]["gpt-4"]
        data["openai"]["models"]["gpt-4o-mini"]["cost"]["input"] = 0.1
        data["anthropic"]["models"]["claude-next"] = {"id": "claude-next"}
        server.add_route("/api.json", msgspec.json.encode(data))
        code, out, _ = run(["verify"], config(f"{server.base_url}/api.json"), tmp_path)
        assert code == 1
        assert "- openai/gpt-4" in out.splitlines()
        assert "+ anthropic/claude-next" in out
        assert "~ openai/gpt-4o-mini: cost.input 0.15 -> 0.1" in out


class TestShow:
    def test_table_lists_configured_providers(self, tmp_path: Path) -> None:
        code, out, _ = run(["show"], config("http://unused"), tmp_path)
        lines = out.splitlines()
        assert code == 0 and lines[0] == "catalog: pinned"
        assert lines[1].split() == [
            "provider",
            "model",
            "context",
            "output",
            "in",
            "$/M",
            "out",
            "$/M",
            "tools",
            "reasoning",
        ]
        row = next(line for line in lines if " gpt-4o-mini " in line)
        assert row.split() == [
            "openai",
            "gpt-4o-mini",
            "128000",
            "16384",
            "0.15",
            "0.6",
            "yes",
            "no",
        ]
        assert not any(line.startswith("google") for line in lines)

    def test_provider_filter_and_cache_source(self, server: FakeLLM, tmp_path: Path) -> None:
        server.add_route("/api.json", pinned_bytes())
        run(["fetch", "--all"], config(f"{server.base_url}/api.json"), tmp_path)
        code, out, _ = run(["show", "--provider", "google"], config("http://unused"), tmp_path)
        assert code == 0 and "model_catalog.json" in out.splitlines()[0]
        assert {line.split()[0] for line in out.splitlines()[2:]} == {"google"}

    def test_usage_errors_return_a_status(self, tmp_path: Path) -> None:
        assert run(["frobnicate"], config("http://unused"), tmp_path)[0] == 2
