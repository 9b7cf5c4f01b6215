"""Build providers from `[providers.registry.<name>]` entries.

`build_provider` resolves the API key (four tiers, `oxydra.config.credentials`), validates the
model against the catalog under the entry's namespace (unless `skip_catalog_validation`),
derives capabilities, and wires the codec for the entry's `provider_type` to an HTTP endpoint
with the entry's `base_url` and `extra_headers`. `build_reliable_provider` wraps the selected
route with retries and the `[reliability] fallbacks` chain.
"""

from __future__ import annotations

import asyncio
import importlib
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from oxydra._lazy import LazyModule
from oxydra.catalog import ModelCatalog, catalog_provider_for
from oxydra.config.credentials import is_local_url, key_required, key_variables, resolve_api_key
from oxydra.config.schema import AgentConfig, ProviderEntry
from oxydra.core.errors import ConfigError
from oxydra.core.log import get_logger
from oxydra.providers._base import WireCodec, WireProvider
from oxydra.providers._http import HttpEndpoint
from oxydra.providers.reliable import ReliableProvider, Route, Sleep

if TYPE_CHECKING:
    import httpx
else:
    httpx = LazyModule("httpx")  # loaded by the first request, not by an idle server

_log = get_logger(__name__)
DEFAULT_TIMEOUT_SECS = 120.0

# The same as each format module's DEFAULT_BASE_URL (tests/providers check it); written out
# so that a run imports the codec of its own provider type only.
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "openai_responses": "https://api.openai.com",
}


def _openai_codec(name: str, official: bool, entry: ProviderEntry, images: bool) -> WireCodec:
    from oxydra.providers import openai_chat
    from oxydra.wire import openai_chat as openai_wire

    field: Literal["max_completion_tokens", "max_tokens"] = (
        "max_completion_tokens" if official else "max_tokens"
    )
    dialect = entry.schema_dialect or ("full" if official else "compact")
    profile = openai_wire.OpenAIChatProfile(
        name=name, max_tokens_field=field, schema_dialect=dialect, tool_images=images
    )
    return openai_chat.codec(profile)


def _anthropic_codec(name: str, official: bool, entry: ProviderEntry, images: bool) -> WireCodec:
    from oxydra.providers import anthropic
    from oxydra.wire import anthropic as anthropic_wire

    return anthropic.codec(anthropic_wire.AnthropicProfile(name=name, tool_images=images))


def _gemini_codec(name: str, official: bool, entry: ProviderEntry, images: bool) -> WireCodec:
    from oxydra.providers import gemini
    from oxydra.wire import gemini as gemini_wire

    return gemini.codec(gemini_wire.GeminiProfile(name=name, tool_images=images))


def _responses_codec(name: str, official: bool, entry: ProviderEntry, images: bool) -> WireCodec:
    from oxydra.providers import responses
    from oxydra.wire import responses as responses_wire

    return responses.codec(responses_wire.ResponsesProfile(name=name, tool_images=images))


_CODECS: dict[str, Callable[[str, bool, ProviderEntry, bool], WireCodec]] = {
    "openai": _openai_codec,
    "anthropic": _anthropic_codec,
    "gemini": _gemini_codec,
    "openai_responses": _responses_codec,
}
_WIRE_MODULES = {
    "openai": "oxydra.wire.openai_chat",
    "anthropic": "oxydra.wire.anthropic",
    "gemini": "oxydra.wire.gemini",
    "openai_responses": "oxydra.wire.responses",
}


def _auth_headers(provider_type: str, key: str | None) -> dict[str, str]:
    """The provider type's authentication headers (from its wire module, imported now)."""
    module = importlib.import_module(_WIRE_MODULES[provider_type])
    return module.auth_headers(key)  # type: ignore[no-any-return]


def registry_entry(name: str, config: AgentConfig) -> ProviderEntry:
    """The registry entry called `name`.

    Raises:
        ConfigError: no such entry; the message lists the known ones.
    """
    registry = config.providers.registry
    if name not in registry:
        known = ", ".join(sorted(registry)) or "none"
        raise ConfigError(
            f"provider '{name}' is not in the provider registry (known: {known})",
            key=f"providers.registry.{name}",
        )
    return registry[name]


def _api_key(name: str, entry: ProviderEntry, environ: Mapping[str, str]) -> str | None:
    """The entry's key; None (no `Authorization` at all) for a local server without one."""
    key, _source = resolve_api_key(entry, environ)
    if key is None and key_required(entry):
        variables = ", ".join(key_variables(entry))
        raise ConfigError(
            f"no API key for provider '{name}'",
            key=f"providers.registry.{name}.api_key",
            hint=f"set one of the environment variables {variables}, "
            f"or api_key in [providers.registry.{name}]",
        )
    return key


def build_provider(
    name: str,
    config: AgentConfig,
    environ: Mapping[str, str],
    catalog: ModelCatalog,
    http_client: httpx.AsyncClient | None = None,
    *,
    model: str | None = None,
) -> WireProvider:
    """The provider of registry entry `name`, for `model` (default: `[selection] model`).

    Raises:
        ConfigError: unknown entry or no API key (naming the variables to set).
        CatalogError: the model is not in the catalog and validation is not skipped.
    """
    entry = registry_entry(name, config)
    key = _api_key(name, entry, environ)
    model_id = model or config.selection.model
    namespace = catalog_provider_for(entry)
    local = is_local_url(entry.base_url)
    skip = config.catalog.skip_catalog_validation or local
    descriptor = catalog.resolve(namespace, model_id, skip_validation=skip, hints=entry)
    caps = catalog.caps(namespace, model_id, descriptor)
    known = catalog.get(namespace, model_id) is not None
    if not known and entry.max_output_tokens is None:
        # The catalog's stand-in output limit is a guess; a server with a small window
        # refuses it outright. Send none and let the server decide.
        caps = msgspec.structs.replace(caps, max_output_tokens=None)
    if caps.deprecated:
        _log.warning("model is deprecated", extra={"oxy": {"provider": name, "model": model_id}})
    default_base = DEFAULT_BASE_URLS[entry.provider_type]
    base_url = entry.base_url or default_base
    endpoint = HttpEndpoint(
        provider=name,
        base_url=base_url,
        headers={**_auth_headers(entry.provider_type, key), **entry.extra_headers},
        client=http_client,
        timeout=entry.timeout_secs or DEFAULT_TIMEOUT_SECS,
    )
    official = base_url.rstrip("/").startswith(default_base)
    # a tool result's images (an MCP server's) go to a model whose catalog entry reads images
    images = "image" in caps.input_modalities
    codec = _CODECS[entry.provider_type](name, official, entry, images)
    ask_server = (
        entry.provider_type == "openai"
        and not known
        and not official
        and entry.max_context_tokens is None
    )
    if entry.provider_type == "openai_responses":
        from oxydra.providers import responses

        return responses.ResponsesProvider(
            name=name, codec=codec, endpoint=endpoint, caps=caps, catalog_provider=namespace
        )
    return WireProvider(
        name=name,
        codec=codec,
        endpoint=endpoint,
        caps=caps,
        catalog_provider=namespace,
        window_probe=_window_probe() if ask_server else None,
    )


def _window_probe() -> Callable[..., Any]:
    from oxydra.wire import openai_chat as openai_wire

    return openai_wire.model_context_window


def parse_fallback(spec: str, config: AgentConfig) -> tuple[str, str | None]:
    """`name` or `name/model` (the model may itself contain `/`)."""
    name, _, model = spec.partition("/")
    registry_entry(name, config)
    return name, model or None


def build_reliable_provider(
    config: AgentConfig,
    environ: Mapping[str, str],
    catalog: ModelCatalog,
    http_client: httpx.AsyncClient | None = None,
    *,
    provider: str | None = None,
    model: str | None = None,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> ReliableProvider:
    """The selected route (default `[selection]`) with retries and `[reliability] fallbacks`."""
    name = provider or config.selection.provider
    model_id = model or config.selection.model
    primary = build_provider(name, config, environ, catalog, http_client, model=model_id)
    routes = []
    for spec in config.reliability.fallbacks:
        fb_name, fb_model = parse_fallback(spec, config)
        fb_model = fb_model or model_id
        fb = build_provider(fb_name, config, environ, catalog, http_client, model=fb_model)
        routes.append(Route(fb, name=fb_name, model=fb_model))
    return ReliableProvider(
        primary,
        config.reliability,
        fallbacks=routes,
        sleep=sleep,
        rng=rng,
        attempt_timeout=float(config.runtime.turn_timeout_secs),
    )
