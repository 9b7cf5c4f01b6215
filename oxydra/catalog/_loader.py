"""Find, read and write catalog files; offline first.

Resolution order at start-up (the first readable file wins, nothing is fetched):

1. the user cache `~/.config/oxydra/model_catalog.json` (written by `oxydra catalog fetch`);
2. the workspace file `./.oxydra/model_catalog.json`;
3. the pinned snapshot shipped as package data: the top-level `catalog/` directory of the
   source tree, imported as `oxydra.catalog.data` (setup.py maps it; build_pyz.py copies it).

A cache file that cannot be parsed is skipped with a warning, so a bad download never stops
the agent. Capability overrides come from the package data, then
`~/.config/oxydra/oxydra_caps_overrides.json`, then `./.oxydra/oxydra_caps_overrides.json`,
merged key by key.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import msgspec

from oxydra.catalog._catalog import ModelCatalog
from oxydra.catalog._schema import CapsOverrides, CatalogData, CatalogProvider
from oxydra.core.errors import CatalogError
from oxydra.core.log import get_logger

_log = get_logger(__name__)

CATALOG_FILE = "model_catalog.json"
OVERRIDES_FILE = "oxydra_caps_overrides.json"
PINNED_FILE = "pinned_model_catalog.json"

_catalog_decoder = msgspec.json.Decoder(dict[str, CatalogProvider])
_overrides_decoder = msgspec.json.Decoder(CapsOverrides)


def _package_data(name: str) -> bytes:
    from importlib.resources import files  # in the archive: the pack's index (oxydra.py)

    return files("oxydra.catalog.data").joinpath(name).read_bytes()


def pinned_path() -> Path:
    """The pinned snapshot as a file on disk, for `catalog fetch --update-pinned`.

    Raises:
        CatalogError: the data is inside an archive (`oxydra.pyz`, a zipped wheel).
    """
    entry = resources.files("oxydra.catalog.data").joinpath(PINNED_FILE)
    if not isinstance(entry, Path):
        raise CatalogError(
            "the pinned catalog is inside an archive; run `catalog fetch --update-pinned` "
            "from a source checkout (it writes catalog/pinned_model_catalog.json)"
        )
    return entry


def pinned_bytes() -> bytes:
    """The raw pinned snapshot shipped with Oxydra."""
    return _package_data(PINNED_FILE)


def parse_catalog(data: bytes, source: str) -> CatalogData:
    """Validate catalog JSON in models.dev's schema.

    Raises:
        CatalogError: not JSON, not the schema, or no provider with models.
    """
    try:
        providers = _catalog_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CatalogError(f"catalog {source} is not in models.dev's schema: {exc}") from exc
    if not any(p.models for p in providers.values()):
        raise CatalogError(f"catalog {source} lists no models")
    return providers


def parse_overrides(data: bytes, source: str) -> CapsOverrides:
    """Validate a caps overrides file (unknown keys are errors: it is our own format)."""
    try:
        return _overrides_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CatalogError(f"caps overrides {source} are invalid: {exc}") from exc


def config_dirs(environ: Mapping[str, str], cwd: Path | None = None) -> list[Path]:
    """User then workspace config directories, in resolution order."""
    home = environ.get("HOME")
    user = Path(home) if home else Path.home()
    return [user / ".config" / "oxydra", (cwd or Path.cwd()) / ".oxydra"]


def user_cache_path(environ: Mapping[str, str]) -> Path:
    """Where `catalog fetch` writes: `~/.config/oxydra/model_catalog.json`."""
    return config_dirs(environ)[0] / CATALOG_FILE


def load_overrides(environ: Mapping[str, str], cwd: Path | None = None) -> CapsOverrides:
    """Package overrides merged with the user's and the workspace's files."""
    overrides = parse_overrides(_package_data(OVERRIDES_FILE), "package data")
    for directory in config_dirs(environ, cwd):
        path = directory / OVERRIDES_FILE
        if path.is_file():
            overrides = overrides.merged(parse_overrides(path.read_bytes(), str(path)))
    return overrides


def load_catalog(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> ModelCatalog:
    """The catalog by the module's resolution order; never touches the network."""
    env = os.environ if environ is None else environ
    overrides = load_overrides(env, cwd)
    for directory in config_dirs(env, cwd):
        path = directory / CATALOG_FILE
        if not path.is_file():
            continue
        try:
            return ModelCatalog(parse_catalog(path.read_bytes(), str(path)), overrides, str(path))
        except (CatalogError, OSError) as exc:
            _log.warning(
                "skipping unreadable catalog", extra={"oxy": {"path": str(path), "error": str(exc)}}
            )
    return ModelCatalog(parse_catalog(pinned_bytes(), "pinned"), overrides, "pinned")


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` so readers see the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
