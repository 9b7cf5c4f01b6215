"""Catalog: the model catalog (models.dev schema), capability overrides, validation and cost.

Start-up reads it offline (`load_catalog`); `oxydra catalog ...` refreshes and inspects it
(`oxydra.commands.catalog`, at the CLI layer). The pinned data is edited in the top-level
`catalog/` directory and imported as `oxydra.catalog.data`.
"""

from oxydra.catalog._catalog import (
    DEFAULT_CATALOG_PROVIDER,
    ModelCatalog,
    apply_override,
    base_caps,
    catalog_provider_for,
    cost_usd,
    synthetic_descriptor,
)
from oxydra.catalog._fetch import (
    MAX_CATALOG_BYTES,
    Fetched,
    configured_providers,
    download,
    fetch_catalog,
    source_url,
)
from oxydra.catalog._loader import (
    load_catalog,
    load_overrides,
    parse_catalog,
    parse_overrides,
    pinned_bytes,
    pinned_path,
    user_cache_path,
    write_atomic,
)
from oxydra.catalog._schema import (
    CapsOverrideEntry,
    CapsOverrides,
    CatalogData,
    CatalogProvider,
    Modalities,
    ModelCost,
    ModelDescriptor,
    ModelLimit,
    ProviderCaps,
)

__all__ = [
    "CapsOverrideEntry",
    "CapsOverrides",
    "CatalogData",
    "CatalogProvider",
    "DEFAULT_CATALOG_PROVIDER",
    "Fetched",
    "MAX_CATALOG_BYTES",
    "Modalities",
    "ModelCatalog",
    "ModelCost",
    "ModelDescriptor",
    "ModelLimit",
    "ProviderCaps",
    "apply_override",
    "base_caps",
    "catalog_provider_for",
    "configured_providers",
    "cost_usd",
    "download",
    "fetch_catalog",
    "load_catalog",
    "load_overrides",
    "parse_catalog",
    "parse_overrides",
    "pinned_bytes",
    "pinned_path",
    "source_url",
    "synthetic_descriptor",
    "user_cache_path",
    "write_atomic",
]
