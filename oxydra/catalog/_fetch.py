"""Downloading the catalog: models.dev's `api.json`, bounded, validated, written atomically.

Used by `oxydra catalog fetch` and the configurator's `POST /api/v1/catalog/refresh`. The
HTTP transport is injectable so tests talk to a loopback server. Nothing is written unless
the download parses as a catalog and holds at least one wanted provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from oxydra.catalog._catalog import catalog_provider_for
from oxydra.catalog._loader import parse_catalog, user_cache_path, write_atomic
from oxydra.config.schema import AgentConfig
from oxydra.core.errors import CatalogError, ConfigError

if TYPE_CHECKING:
    import httpx

MAX_CATALOG_BYTES = 64 * 1024 * 1024


def configured_providers(config: AgentConfig) -> list[str]:
    """The catalog namespaces the registry's entries use."""
    names = {catalog_provider_for(entry) for entry in config.providers.registry.values()}
    return sorted(names)


def source_url(config: AgentConfig, *, pinned: bool, url: str | None = None) -> str:
    """Where to download from: `url`, else `[catalog] url` (or `pinned_url` when `pinned`).

    Raises:
        ConfigError: `pinned` without a `[catalog] pinned_url`.
    """
    if url:
        return url
    if not pinned:
        return config.catalog.url
    if not config.catalog.pinned_url:
        raise ConfigError("--pinned needs [catalog] pinned_url", key="catalog.pinned_url")
    return config.catalog.pinned_url


def download(url: str, transport: httpx.BaseTransport | None = None) -> bytes:
    """GET `url` and return the body.

    Raises:
        CatalogError: transport failure, error status or a body over 64 MiB.
    """
    import httpx  # only fetching needs it; reading the catalog stays quick

    try:
        with httpx.Client(transport=transport, timeout=30.0, follow_redirects=True) as client:
            with client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise CatalogError(f"GET {url} answered HTTP {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_CATALOG_BYTES:
                        raise CatalogError(
                            f"catalog at {url} is larger than {MAX_CATALOG_BYTES} bytes"
                        )
                    chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise CatalogError(f"could not download the catalog from {url}: {exc}") from exc
    return b"".join(chunks)


class Fetched(msgspec.Struct, frozen=True, kw_only=True):
    """What a fetch wrote."""

    url: str
    target: str
    providers: int
    models: int


def fetch_catalog(
    config: AgentConfig,
    environ: Mapping[str, str],
    *,
    pinned: bool = False,
    url: str | None = None,
    target: Path | None = None,
    all_providers: bool = False,
    transport: httpx.BaseTransport | None = None,
) -> Fetched:
    """Download, keep the configured providers (unless `all_providers`), write atomically.

    Raises:
        CatalogError: the download failed, is not a catalog, or has no wanted provider.
        ConfigError: `pinned` without a `[catalog] pinned_url`.
    """
    where = target or user_cache_path(environ)
    source = source_url(config, pinned=pinned, url=url)
    data = download(source, transport)
    parse_catalog(data, source)
    raw: dict[str, Any] = msgspec.json.decode(data)
    if not all_providers:
        wanted = configured_providers(config)
        raw = {name: raw[name] for name in wanted if name in raw}
        if not raw:
            raise CatalogError(f"catalog at {source} has none of the configured providers {wanted}")
    providers = parse_catalog(msgspec.json.encode(raw), source)
    write_atomic(where, msgspec.json.format(msgspec.json.encode(raw), indent=2) + b"\n")
    count = sum(len(p.models) for p in providers.values())
    return Fetched(url=source, target=str(where), providers=len(providers), models=count)
