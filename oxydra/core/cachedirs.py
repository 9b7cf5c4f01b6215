"""Where the user's caches of native code are: the archive's unpacked packages, the compiled
WASM guest.

A later process loads what it finds there, so whatever could let the model's tools reach
them (a `[mounts]` entry) is checked against these paths. The bootstrap `oxydra.py` computes
the archive's directory the same way (it runs before this package can be imported); a test
holds the two together.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def user_cache_base(environ: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """`$XDG_CACHE_HOME`, else `~/.cache`."""
    env = os.environ if environ is None else environ
    explicit = env.get("XDG_CACHE_HOME")
    if explicit:
        return Path(explicit)
    return (home or Path(env.get("HOME") or os.path.expanduser("~"))) / ".cache"


def pyz_cache_root(environ: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """Where `oxydra.pyz` unpacks its native packages: `$OXYDRA_PYZ_CACHE`, else
    `<cache>/oxydra/pyz`."""
    env = os.environ if environ is None else environ
    explicit = env.get("OXYDRA_PYZ_CACHE")
    return Path(explicit) if explicit else user_cache_base(env, home) / "oxydra" / "pyz"


def wasm_cache_dir(environ: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """Where compiled WASM guests are kept: `<cache>/oxydra/wasm`."""
    return user_cache_base(environ, home) / "oxydra" / "wasm"
