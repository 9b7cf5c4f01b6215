"""Providers: LLM drivers over HTTP for the four wire formats, retries and the registry.

The runtime depends on `Provider` (the seam), builds routes with `build_provider` /
`build_reliable_provider`, and reads `ProviderCaps` from `capabilities()`.
"""

import typing as _typing

from oxydra._lazy import lazy_getattr as _lazy_getattr

if _typing.TYPE_CHECKING:
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

__getattr__ = _lazy_getattr(
    globals(),
    {
        "DEFAULT_BASE_URLS": "oxydra.providers._registry",
        "FormatCodec": "oxydra.providers._base",
        "HttpEndpoint": "oxydra.providers._http",
        "Provider": "oxydra.providers._base",
        "ProviderCaps": "oxydra.catalog",
        "ReliableProvider": "oxydra.providers.reliable",
        "ResponsesProvider": "oxydra.providers.responses",
        "Route": "oxydra.providers.reliable",
        "WireCodec": "oxydra.providers._base",
        "WireProvider": "oxydra.providers._base",
        "backoff_delay": "oxydra.providers.reliable",
        "build_provider": "oxydra.providers._registry",
        "build_reliable_provider": "oxydra.providers._registry",
        "join_url": "oxydra.providers._http",
        "parse_fallback": "oxydra.providers._registry",
        "parse_retry_after": "oxydra.providers._http",
        "registry_entry": "oxydra.providers._registry",
    },
)
