"""Catalog: the model catalog (models.dev schema), capability overrides, validation and cost.

Start-up reads it offline (`load_catalog`); `oxydra catalog ...` refreshes and inspects it
(`oxydra.catalog.commands.run_catalog_command`, imported lazily by the CLI since it needs httpx).
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
from oxydra.catalog._loader import (
    load_catalog,
    load_overrides,
    parse_catalog,
    parse_overrides,
    pinned_bytes,
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
    "Modalities",
    "ModelCatalog",
    "ModelCost",
    "ModelDescriptor",
    "ModelLimit",
    "ProviderCaps",
    "apply_override",
    "base_caps",
    "catalog_provider_for",
    "cost_usd",
    "load_catalog",
    "load_overrides",
    "parse_catalog",
    "parse_overrides",
    "pinned_bytes",
    "synthetic_descriptor",
    "user_cache_path",
    "write_atomic",
]
