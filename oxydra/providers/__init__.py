"""Providers: LLM drivers over httpx for the four wire formats, retries and the registry.

The runtime depends on `Provider` (the seam), builds routes with `build_provider` /
`build_reliable_provider`, and reads `ProviderCaps` from `capabilities()`.
"""

from oxydra.catalog import ProviderCaps
from oxydra.providers._base import FormatCodec, Provider, WireCodec, WireProvider
from oxydra.providers._http import HttpEndpoint, join_url, parse_retry_after
from oxydra.providers._registry import (
    DEFAULT_BASE_URLS,
    build_provider,
    build_reliable_provider,
    parse_fallback,
    registry_entry,
)
from oxydra.providers.reliable import ReliableProvider, Route, backoff_delay
from oxydra.providers.responses import ResponsesProvider

__all__ = [
    "DEFAULT_BASE_URLS",
    "FormatCodec",
    "HttpEndpoint",
    "Provider",
    "ProviderCaps",
    "ReliableProvider",
    "ResponsesProvider",
    "Route",
    "WireCodec",
    "WireProvider",
    "backoff_delay",
    "build_provider",
    "build_reliable_provider",
    "join_url",
    "parse_fallback",
    "parse_retry_after",
    "registry_entry",
]
