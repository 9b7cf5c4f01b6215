"""models.dev's catalog schema as view Structs, and Oxydra's capability Structs.

The catalog file is a JSON object keyed by provider id; each provider has `models` keyed by
model id. Only the fields we read are declared; models.dev adds fields over time and those are
ignored. Prices are USD per million tokens; `limit.context` / `limit.output` are tokens, with
0 meaning unknown.
"""

from __future__ import annotations

from typing import Any

import msgspec


class ModelCost(msgspec.Struct, frozen=True, kw_only=True):
    """Prices in USD per million tokens."""

    input: float | None = None
    output: float | None = None
    cache_read: float | None = None
    cache_write: float | None = None


class ModelLimit(msgspec.Struct, frozen=True, kw_only=True):
    """Token limits; 0 means the catalog does not know."""

    context: int = 0
    output: int = 0
    input: int | None = None


class Modalities(msgspec.Struct, frozen=True, kw_only=True):
    """Input and output modalities as models.dev spells them (text, image, audio, video, pdf)."""

    input: list[str] = msgspec.field(default_factory=lambda: ["text"])
    output: list[str] = msgspec.field(default_factory=lambda: ["text"])


class ModelDescriptor(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One model of the catalog."""

    id: str
    name: str = ""
    family: str | None = None
    attachment: bool = False
    reasoning: bool = False
    tool_call: bool = False
    interleaved: bool | dict[str, Any] | None = None
    structured_output: bool | None = None
    temperature: bool = True
    knowledge: str | None = None
    release_date: str | None = None
    last_updated: str | None = None
    modalities: Modalities = msgspec.field(default_factory=Modalities)
    open_weights: bool = False
    cost: ModelCost | None = None
    limit: ModelLimit = msgspec.field(default_factory=ModelLimit)
    status: str | None = None


class CatalogProvider(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One provider namespace of the catalog."""

    id: str
    name: str = ""
    env: list[str] = []
    npm: str | None = None
    doc: str | None = None
    api: str | None = None
    models: dict[str, ModelDescriptor] = {}


CatalogData = dict[str, CatalogProvider]


class ProviderCaps(msgspec.Struct, frozen=True, kw_only=True):
    """What a provider route can do, from the catalog plus overrides.

    Attributes:
        streaming: the route can stream.
        tools: the model takes tool declarations.
        reasoning: the model produces reasoning traces.
        attachments: the model accepts media inputs at all.
        json_mode: the model supports structured output.
        input_modalities: accepted inputs (text, image, audio, video, pdf, document).
        max_input_tokens: prompt limit, when known.
        max_output_tokens: answer limit, when known (Anthropic's `max_tokens` default).
        max_context_tokens: context window, when known.
        deprecated: the catalog or an override marks the model deprecated.
    """

    streaming: bool = True
    tools: bool = True
    reasoning: bool = False
    attachments: bool = False
    json_mode: bool = False
    input_modalities: tuple[str, ...] = ("text",)
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_context_tokens: int | None = None
    deprecated: bool = False


class CapsOverrideEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One override; unset fields leave the catalog's value alone (upstream's field names)."""

    supports_streaming: bool | None = None
    supports_tools: bool | None = None
    supports_json_mode: bool | None = None
    supports_reasoning_traces: bool | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_context_tokens: int | None = None
    attachment: bool | None = None
    input_modalities: list[str] | None = None
    deprecated: bool | None = None


class CapsOverrides(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`oxydra_caps_overrides.json`: defaults per provider, then per `provider/model`."""

    provider_defaults: dict[str, CapsOverrideEntry] = {}
    overrides: dict[str, CapsOverrideEntry] = {}

    def merged(self, other: CapsOverrides) -> CapsOverrides:
        """These overrides with `other`'s entries replacing ours key by key."""
        return CapsOverrides(
            provider_defaults={**self.provider_defaults, **other.provider_defaults},
            overrides={**self.overrides, **other.overrides},
        )
