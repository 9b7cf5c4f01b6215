"""Catalog: resolution order, caps merge, overrides, validation, synthetic models, cost."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from oxydra.catalog import (
    CapsOverrideEntry,
    CapsOverrides,
    ModelCatalog,
    ModelCost,
    ProviderCaps,
    cost_usd,
    load_catalog,
    parse_catalog,
    pinned_bytes,
    synthetic_descriptor,
    write_atomic,
)
from oxydra.config.schema import ProviderEntry
from oxydra.core.errors import CatalogError
from oxydra.core.messages import UsageUpdate

TINY = {
    "acme": {
        "id": "acme",
        "name": "Acme",
        "new_field_from_models_dev": True,
        "models": {
            "rocket-1": {
                "id": "rocket-1",
                "name": "Rocket",
                "tool_call": True,
                "reasoning": False,
                "interleaved": {"field": "reasoning_content"},
                "structured_output": True,
                "attachment": True,
                "modalities": {"input": ["text", "image", "file"], "output": ["text"]},
                "cost": {"input": 2.0, "output": 8.0, "cache_read": 0.5},
                "limit": {"context": 100000, "output": 4000},
                "status": "deprecated",
                "unknown": {"nested": 1},
            },
            "plain": {"id": "plain", "limit": {"context": 0, "output": 0}},
        },
    }
}


def write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.encode(data))


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[dict[str, str], Path]:
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    return {"HOME": str(home)}, work


class TestResolution:
    def test_pinned_snapshot_is_used_when_no_cache_exists(
        self, dirs: tuple[dict[str, str], Path]
    ) -> None:
        environ, work = dirs
        catalog = load_catalog(environ, work)
        assert catalog.source == "pinned"
        assert catalog.get("openai", "gpt-4o-mini") is not None

    def test_user_cache_wins_over_workspace_file(self, dirs: tuple[dict[str, str], Path]) -> None:
        environ, work = dirs
        write(Path(environ["HOME"]) / ".config/oxydra/model_catalog.json", TINY)
        write(
            work / ".oxydra/model_catalog.json",
            {"other": {"id": "other", "models": {"m": {"id": "m"}}}},
        )
        catalog = load_catalog(environ, work)
        assert catalog.source.endswith(".config/oxydra/model_catalog.json")
        assert catalog.get("acme", "rocket-1") is not None

    def test_workspace_file_is_used_without_a_user_cache(
        self, dirs: tuple[dict[str, str], Path]
    ) -> None:
        environ, work = dirs
        write(work / ".oxydra/model_catalog.json", TINY)
        assert load_catalog(environ, work).source == str(work / ".oxydra/model_catalog.json")

    def test_a_corrupt_cache_is_skipped(self, dirs: tuple[dict[str, str], Path]) -> None:
        environ, work = dirs
        cache = Path(environ["HOME"]) / ".config/oxydra/model_catalog.json"
        cache.parent.mkdir(parents=True)
        cache.write_bytes(b"{truncated")
        assert load_catalog(environ, work).source == "pinned"

    def test_user_overrides_merge_over_package_ones(
        self, dirs: tuple[dict[str, str], Path]
    ) -> None:
        environ, work = dirs
        write(
            work / ".oxydra/oxydra_caps_overrides.json",
            {"overrides": {"openai/gpt-4o-mini": {"supports_tools": False}}},
        )
        catalog = load_catalog(environ, work)
        assert catalog.caps("openai", "gpt-4o-mini").tools is False
        assert catalog.overrides.provider_defaults["openai"].supports_streaming is True

    def test_overrides_with_unknown_keys_are_refused(
        self, dirs: tuple[dict[str, str], Path]
    ) -> None:
        environ, work = dirs
        write(
            work / ".oxydra/oxydra_caps_overrides.json",
            {"overrides": {"a/b": {"supports_magic": True}}},
        )
        with pytest.raises(CatalogError, match="supports_magic"):
            load_catalog(environ, work)

    @pytest.mark.parametrize("data", [b"[]", b"{}", b'{"p": {"id": "p", "models": {}}}', b"nope"])
    def test_invalid_catalogs_are_refused(self, data: bytes) -> None:
        with pytest.raises(CatalogError):
            parse_catalog(data, "test")

    def test_pinned_snapshot_has_the_three_providers(self) -> None:
        providers = parse_catalog(pinned_bytes(), "pinned")
        assert {name: len(p.models) for name, p in providers.items()} == {
            "anthropic": 23,
            "google": 28,
            "openai": 42,
        }


class TestCaps:
    def catalog(self, overrides: CapsOverrides | None = None) -> ModelCatalog:
        return ModelCatalog(parse_catalog(msgspec.json.encode(TINY), "tiny"), overrides, "tiny")

    def test_caps_derive_from_the_catalog_entry(self) -> None:
        assert self.catalog().caps("acme", "rocket-1") == ProviderCaps(
            streaming=True,
            tools=True,
            reasoning=True,
            attachments=True,
            json_mode=True,
            input_modalities=("text", "image", "document"),
            max_input_tokens=100000,
            max_output_tokens=4000,
            max_context_tokens=100000,
            deprecated=True,
        )

    def test_zero_limits_mean_unknown(self) -> None:
        caps = self.catalog().caps("acme", "plain")
        assert (caps.max_context_tokens, caps.max_output_tokens, caps.tools) == (None, None, False)

    def test_provider_defaults_then_model_overrides(self) -> None:
        overrides = CapsOverrides(
            provider_defaults={
                "acme": CapsOverrideEntry(supports_streaming=False, max_output_tokens=1000)
            },
            overrides={
                "acme/rocket-1": CapsOverrideEntry(
                    max_output_tokens=2000, deprecated=False, input_modalities=["text"]
                )
            },
        )
        catalog = self.catalog(overrides)
        rocket, plain = catalog.caps("acme", "rocket-1"), catalog.caps("acme", "plain")
        assert (
            rocket.streaming,
            rocket.max_output_tokens,
            rocket.deprecated,
            rocket.input_modalities,
        ) == (False, 2000, False, ("text",))
        assert (plain.streaming, plain.max_output_tokens) == (False, 1000)
        assert catalog.is_deprecated("acme", "rocket-1") is False


class TestValidation:
    def test_unknown_model_suggests_close_ids(self) -> None:
        catalog = load_catalog({"HOME": "/nonexistent"})
        with pytest.raises(CatalogError) as caught:
            catalog.resolve("anthropic", "claude-sonnet-4.5")
        assert "claude-sonnet-4-5" in str(caught.value)
        assert "skip_catalog_validation" in str(caught.value)

    def test_unknown_provider_lists_known_ones(self) -> None:
        with pytest.raises(CatalogError, match="anthropic, google, openai"):
            load_catalog({"HOME": "/nonexistent"}).resolve("mistral", "m")

    def test_skipping_validation_gives_a_synthetic_descriptor(self) -> None:
        descriptor = load_catalog({"HOME": "/nonexistent"}).resolve(
            "openai", "my-local-model", skip_validation=True
        )
        assert (descriptor.tool_call, descriptor.limit.context, descriptor.limit.output) == (
            True,
            128_000,
            16_384,
        )

    def test_image_models_get_image_input_and_no_tools(self) -> None:
        descriptor = synthetic_descriptor("flux-image-gen")
        assert (descriptor.tool_call, descriptor.attachment, descriptor.modalities.input) == (
            False,
            True,
            ["text", "image"],
        )

    def test_entry_hints_override_the_synthetic_defaults(self) -> None:
        hints = ProviderEntry(
            provider_type="openai",
            max_context_tokens=32_000,
            max_output_tokens=2_048,
            attachment=False,
            reasoning=True,
        )
        descriptor = synthetic_descriptor("qwen-image", hints)
        assert (
            descriptor.limit.context,
            descriptor.limit.output,
            descriptor.attachment,
            descriptor.reasoning,
        ) == (32_000, 2_048, False, True)


class TestCost:
    @pytest.mark.parametrize(
        ("usage", "usd"),
        [
            (UsageUpdate(prompt_tokens=1_000_000, completion_tokens=0), 2.0),
            (UsageUpdate(prompt_tokens=0, completion_tokens=1_000_000), 8.0),
            (
                UsageUpdate(
                    prompt_tokens=1_000_000, completion_tokens=500_000, cache_read_tokens=400_000
                ),
                1.2 + 0.2 + 4.0,
            ),
            (UsageUpdate(), 0.0),
        ],
    )
    def test_prices_per_million_with_cache_reads(self, usage: UsageUpdate, usd: float) -> None:
        assert cost_usd(ModelCost(input=2.0, output=8.0, cache_read=0.5), usage) == pytest.approx(
            usd
        )

    def test_cache_reads_cost_the_input_price_when_no_cache_price(self) -> None:
        usage = UsageUpdate(prompt_tokens=100, cache_read_tokens=100)
        assert cost_usd(ModelCost(input=1.0, output=1.0), usage) == pytest.approx(0.0001)

    def test_unknown_prices_give_none(self) -> None:
        assert cost_usd(None, UsageUpdate(prompt_tokens=5)) is None
        assert cost_usd(ModelCost(input=1.0), UsageUpdate(prompt_tokens=5)) is None
        assert (
            load_catalog({"HOME": "/nonexistent"}).cost_usd("openai", "nope", UsageUpdate()) is None
        )

    def test_catalog_cost_for_a_real_model(self) -> None:
        usage = UsageUpdate(prompt_tokens=10_000, completion_tokens=1_000)
        assert load_catalog({"HOME": "/nonexistent"}).cost_usd(
            "openai", "gpt-4o-mini", usage
        ) == pytest.approx(0.0021)


def test_atomic_write_replaces_the_file_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]
