"""API key resolution in four tiers, first non-empty wins.

1. the entry's inline `api_key`;
2. the variable named by the entry's `api_key_env` (when that variable is set at all, it is
   chosen over tier 3 even if empty, as in the Rust version: naming a variable is a decision);
3. the provider type's standard variable (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `GEMINI_API_KEY`);
4. `API_KEY`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from oxydra.config.schema import ProviderEntry

STANDARD_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "openai_responses": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
}


def resolve_api_key(entry: ProviderEntry, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """Return the key and where it came from (`api_key`, `env:NAME` or `none`)."""
    if entry.api_key and entry.api_key.strip():
        return entry.api_key.strip(), "api_key"
    if entry.api_key_env and entry.api_key_env in environ:
        value = environ[entry.api_key_env].strip()
        return (value or None), f"env:{entry.api_key_env}"
    standard = STANDARD_KEY_ENV[entry.provider_type]
    for name in (standard, "API_KEY"):
        value = environ.get(name, "").strip()
        if value:
            return value, f"env:{name}"
    return None, "none"


def key_variables(entry: ProviderEntry) -> list[str]:
    """The variables a user may set for this entry, in the order they are consulted."""
    names = [entry.api_key_env] if entry.api_key_env else []
    names += [STANDARD_KEY_ENV[entry.provider_type], "API_KEY"]
    return list(dict.fromkeys(names))


def is_local_url(url: str | None) -> bool:
    """Whether `url` points at this machine or a private network (a self-hosted server).

    Only literal addresses and `localhost` count: resolving a name here would make the answer
    depend on DNS at start-up.
    """
    if not url:
        return False
    host = urlsplit(url.strip()).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def key_required(entry: ProviderEntry) -> bool:
    """Whether a missing key is an error: not for a server on this machine or a private network.

    llama.cpp, Ollama, vLLM and LM Studio need no key by default; without one no
    `Authorization` header is sent at all.
    """
    return not is_local_url(entry.base_url)
