"""Fixtures for provider tests: a pinned catalog and providers wired to the fake LLM."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from oxydra.catalog import ModelCatalog, load_catalog
from oxydra.config.schema import (
    AgentConfig,
    CatalogConfig,
    ProviderEntry,
    ProvidersConfig,
    ReliabilityConfig,
    Selection,
)
from oxydra.core import Context, FunctionDecl, Message, ModelId, ProviderId
from oxydra.providers import WireProvider, build_provider

MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "gemini": "gemini-2.5-flash",
    "openai_responses": "gpt-4o-mini",
}
FORMATS = sorted(MODELS)
WEATHER = FunctionDecl(
    name="get_weather",
    description="Weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture
def catalog(tmp_path: Path) -> ModelCatalog:
    """The pinned catalog (no user or workspace files)."""
    return load_catalog({"HOME": str(tmp_path / "home")}, cwd=tmp_path)


def config_for(
    entries: dict[str, ProviderEntry],
    *,
    selection: str | None = None,
    model: str | None = None,
    reliability: ReliabilityConfig | None = None,
    skip_catalog: bool = False,
) -> AgentConfig:
    """An AgentConfig with exactly these registry entries."""
    first = selection or next(iter(entries))
    return AgentConfig(
        selection=Selection(provider=first, model=model or MODELS[entries[first].provider_type]),
        providers=ProvidersConfig(registry=entries),
        reliability=reliability or ReliabilityConfig(),
        catalog=CatalogConfig(skip_catalog_validation=skip_catalog),
    )


def context(*messages: Message, fmt: str = "openai", **kw: Any) -> Context:
    """A context for the format's default model; a user question when no messages given."""
    return Context(
        provider=ProviderId(fmt),
        model=ModelId(MODELS[fmt]),
        messages=messages
        or (Message(role="system", content="Be brief."), Message(role="user", content="Weather?")),
        **kw,
    )


@pytest.fixture(params=["h1", "httpx"])
async def http_client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient | None]:
    """Each test runs on both transports: the endpoint's own (`_h1`, None here: what the
    product uses) and a shared httpx client handed in (`_httpx`, used behind a proxy)."""
    if request.param == "h1":
        yield None
        return
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


ProviderFactory = Callable[..., WireProvider]


@pytest.fixture
async def make_provider(
    catalog: ModelCatalog, http_client: httpx.AsyncClient | None
) -> AsyncIterator[ProviderFactory]:
    """`make_provider(fmt, base_url, **entry_fields)` -> a provider on the test's transport;
    each is closed (its pooled connections with it) when the test ends."""
    made: list[WireProvider] = []

    def make(fmt: str, base_url: str, **fields: Any) -> WireProvider:
        entry = ProviderEntry(provider_type=fmt, base_url=base_url, api_key="test-key", **fields)  # type: ignore[arg-type]
        made.append(build_provider(fmt, config_for({fmt: entry}), {}, catalog, http_client))
        return made[-1]

    yield make
    for provider in made:
        await provider.aclose()
