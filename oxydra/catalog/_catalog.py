"""The model catalog: lookup, validation, capabilities and cost.

Capabilities are derived in three layers, later wins: the catalog entry (streaming on, tools
from `tool_call`, JSON mode from `structured_output`, reasoning from `reasoning` or
`interleaved`, limits from `limit`), then the provider's `provider_defaults`, then the
`provider/model` override.

A model missing from the catalog is an error unless validation is skipped (local or proxy
models); then a synthetic descriptor stands in (128k context, 16k output, tools on unless the
id says it is an image model). Either way the registry entry's hints (`max_context_tokens`,
`max_output_tokens`, `max_input_tokens`, modalities, ...) adjust the descriptor: what the
operator wrote for this entry beats what the catalog says of the model.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from oxydra.catalog._schema import (
    CapsOverrideEntry,
    CapsOverrides,
    CatalogData,
    Modalities,
    ModelCost,
    ModelDescriptor,
    ModelLimit,
    ProviderCaps,
)
from oxydra.config.schema import ProviderEntry
from oxydra.core.errors import CatalogError
from oxydra.core.messages import UsageUpdate

DEFAULT_CATALOG_PROVIDER = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "openai_responses": "openai",
}
_MODALITY_ALIASES = {"file": "document"}
SYNTHETIC_CONTEXT = 128_000
SYNTHETIC_OUTPUT = 16_384


def catalog_provider_for(entry: ProviderEntry) -> str:
    """The catalog namespace of a registry entry: its `catalog_provider`, else by type."""
    return entry.catalog_provider or DEFAULT_CATALOG_PROVIDER[entry.provider_type]


def cost_usd(cost: ModelCost | None, usage: UsageUpdate) -> float | None:
    """Price of one call in USD from per-million prices, or None when the model has no prices.

    Prompt tokens include cache reads, which are priced at `cache_read` when the catalog has
    that price; reasoning tokens are part of the completion tokens and priced as output.
    """
    if cost is None or cost.input is None or cost.output is None:
        return None
    cached = usage.cache_read_tokens or 0
    fresh = max((usage.prompt_tokens or 0) - cached, 0)
    cache_price = cost.cache_read if cost.cache_read is not None else cost.input
    total = fresh * cost.input + cached * cache_price + (usage.completion_tokens or 0) * cost.output
    return total / 1_000_000


def synthetic_descriptor(model: str, hints: ProviderEntry | None = None) -> ModelDescriptor:
    """A stand-in descriptor for a model the catalog does not know."""
    image_model = "image" in model.lower()
    descriptor = ModelDescriptor(
        id=model,
        name=model,
        attachment=image_model,
        tool_call=not image_model,
        reasoning=bool(hints and hints.reasoning),
        modalities=Modalities(input=["text", "image"] if image_model else ["text"]),
        limit=ModelLimit(context=SYNTHETIC_CONTEXT, output=SYNTHETIC_OUTPUT),
    )
    return _apply_hints(descriptor, hints) if hints else descriptor


def _apply_hints(descriptor: ModelDescriptor, hints: ProviderEntry) -> ModelDescriptor:
    limit = ModelLimit(
        context=hints.max_context_tokens or descriptor.limit.context,
        output=hints.max_output_tokens or descriptor.limit.output,
        input=hints.max_input_tokens or descriptor.limit.input,
    )
    modalities = descriptor.modalities
    if hints.input_modalities is not None:
        modalities = Modalities(input=list(hints.input_modalities), output=modalities.output)
    return msgspec.structs.replace(
        descriptor,
        attachment=descriptor.attachment if hints.attachment is None else hints.attachment,
        reasoning=descriptor.reasoning if hints.reasoning is None else hints.reasoning,
        modalities=modalities,
        limit=limit,
    )


def base_caps(descriptor: ModelDescriptor) -> ProviderCaps:
    """Capabilities as the catalog entry alone describes them."""
    context = descriptor.limit.context or None
    return ProviderCaps(
        streaming=True,
        tools=descriptor.tool_call,
        reasoning=descriptor.reasoning or bool(descriptor.interleaved),
        attachments=descriptor.attachment,
        json_mode=bool(descriptor.structured_output),
        input_modalities=tuple(_MODALITY_ALIASES.get(m, m) for m in descriptor.modalities.input),
        max_input_tokens=descriptor.limit.input or context,
        max_output_tokens=descriptor.limit.output or None,
        max_context_tokens=context,
        deprecated=descriptor.status == "deprecated",
    )


def apply_override(caps: ProviderCaps, entry: CapsOverrideEntry) -> ProviderCaps:
    """`caps` with the override's set fields replacing the catalog's."""
    pairs = {
        "streaming": entry.supports_streaming,
        "tools": entry.supports_tools,
        "json_mode": entry.supports_json_mode,
        "reasoning": entry.supports_reasoning_traces,
        "max_input_tokens": entry.max_input_tokens,
        "max_output_tokens": entry.max_output_tokens,
        "max_context_tokens": entry.max_context_tokens,
        "attachments": entry.attachment,
        "deprecated": entry.deprecated,
    }
    changes: dict[str, object] = {n: v for n, v in pairs.items() if v is not None}
    if entry.input_modalities is not None:
        changes["input_modalities"] = tuple(entry.input_modalities)
    return msgspec.structs.replace(caps, **changes)


class ModelCatalog:
    """Catalog data plus capability overrides.

    Args:
        providers: the catalog, keyed by provider namespace.
        overrides: capability overrides.
        source: where the data came from (a path or `pinned`), for messages.
    """

    def __init__(
        self, providers: CatalogData, overrides: CapsOverrides | None = None, source: str = ""
    ) -> None:
        self.providers = providers
        self.overrides = overrides or CapsOverrides()
        self.source = source

    def get(self, provider: str, model: str) -> ModelDescriptor | None:
        """The descriptor of `provider/model`, or None."""
        entry = self.providers.get(provider)
        return entry.models.get(model) if entry else None

    def models(self, provider: str | None = None) -> Iterator[tuple[str, ModelDescriptor]]:
        """`(provider, descriptor)` pairs, sorted, optionally of one provider."""
        for name in sorted(self.providers):
            if provider is None or name == provider:
                for model_id in sorted(self.providers[name].models):
                    yield name, self.providers[name].models[model_id]

    def resolve(
        self,
        provider: str,
        model: str,
        *,
        skip_validation: bool = False,
        hints: ProviderEntry | None = None,
    ) -> ModelDescriptor:
        """The descriptor for a configured model; synthetic when unknown and skipping.

        Raises:
            CatalogError: the model is unknown and validation is not skipped.
        """
        found = self.get(provider, model)
        if found is not None:
            return _apply_hints(found, hints) if hints else found
        if skip_validation:
            return synthetic_descriptor(model, hints)
        raise self._unknown(provider, model)

    def _unknown(self, provider: str, model: str) -> CatalogError:
        if provider not in self.providers:
            known = ", ".join(sorted(self.providers)) or "none"
            return CatalogError(
                f"catalog provider '{provider}' is not in the model catalog ({self.source})",
                hint=f"known providers: {known}; or set [catalog] skip_catalog_validation = true",
            )
        import difflib  # only for a name that is not in the catalog

        close = difflib.get_close_matches(model, list(self.providers[provider].models), n=3)
        suggestion = f"did you mean {', '.join(close)}? " if close else ""
        return CatalogError(
            f"model '{model}' is not in the catalog for provider '{provider}' ({self.source})",
            hint=f"{suggestion}for local or proxy models set "
            "[catalog] skip_catalog_validation = true; `oxydra catalog fetch` refreshes it",
        )

    def caps(
        self, provider: str, model: str, descriptor: ModelDescriptor | None = None
    ) -> ProviderCaps:
        """Capabilities of `provider/model`: catalog, then provider defaults, then overrides."""
        descriptor = descriptor or self.get(provider, model) or synthetic_descriptor(model)
        caps = base_caps(descriptor)
        if default := self.overrides.provider_defaults.get(provider):
            caps = apply_override(caps, default)
        if override := self.overrides.overrides.get(f"{provider}/{model}"):
            caps = apply_override(caps, override)
        return caps

    def is_deprecated(self, provider: str, model: str) -> bool:
        """Whether the catalog or an override marks the model deprecated."""
        return self.caps(provider, model).deprecated

    def cost_usd(self, provider: str, model: str, usage: UsageUpdate) -> float | None:
        """Price of one call in USD, or None when the model or its prices are unknown."""
        descriptor = self.get(provider, model)
        return cost_usd(descriptor.cost, usage) if descriptor else None
