"""Rules that span several keys, checked after every value has its type."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from oxydra.config.schema import AgentConfig

if TYPE_CHECKING:
    from oxydra.config._layers import Layers


def check_agent_config(config: AgentConfig, layers: Layers) -> tuple[AgentConfig, list[str]]:
    """Append cross-key problems to `layers.problems`; return the config and warnings.

    The deprecated `runtime.max_cost` (tokens, in the Rust version) becomes `max_tokens`.
    """
    problems = layers.problems
    warnings: list[str] = []

    def at(key: str) -> str:
        return f"{layers.source_of(key)}: key '{key}'"

    problems.extend(f"{at('config_version')}: {p}" for p in _version_problems(config))
    registry = config.providers.registry
    if config.selection.provider not in registry:
        problems.append(
            f"{at('selection.provider')}: {config.selection.provider!r} is not in "
            f"[providers.registry] (known: {', '.join(sorted(registry))})"
        )
    if not config.selection.model.strip():
        problems.append(f"{at('selection.model')}: must not be empty")
    retrieval = config.memory.retrieval
    if abs(retrieval.vector_weight + retrieval.fts_weight - 1.0) > 1e-6:
        problems.append(
            f"{at('memory.retrieval.vector_weight')}: vector_weight + fts_weight must be 1, "
            f"got {retrieval.vector_weight} + {retrieval.fts_weight}"
        )
    rel = config.reliability
    if rel.backoff_base_ms > rel.backoff_max_ms:
        problems.append(
            f"{at('reliability.backoff_base_ms')}: must not exceed backoff_max_ms "
            f"({rel.backoff_base_ms} > {rel.backoff_max_ms})"
        )
    for item in rel.fallbacks:
        if item.split("/", 1)[0] not in registry:
            problems.append(f"{at('reliability.fallbacks')}: {item!r} names no registry entry")
    for name, entry in registry.items():
        if entry.base_url is not None:
            where = at(f"providers.registry.{name}.base_url")
            problems.extend(_url_problems(entry.base_url, where))
        for header, value in entry.extra_headers.items():
            problems.extend(
                _header_problems(header, value, at(f"providers.registry.{name}.extra_headers"))
            )
    for name, agent in config.agents.items():
        if agent.system_prompt_file:
            problems.extend(
                _file_problems(agent.system_prompt_file, at(f"agents.{name}.system_prompt_file"))
            )
        if agent.selection and agent.selection.provider not in registry:
            problems.append(
                f"{at(f'agents.{name}.selection.provider')}: "
                f"{agent.selection.provider!r} is not in [providers.registry]"
            )
    problems.extend(_timezone_problems(config, at))
    problems.extend(_bind_problems(config.gateway.bind, at("gateway.bind")))
    problems.extend(_mcp_problems(config, at))
    runtime = config.runtime
    if runtime.max_cost is not None:
        warnings.append(
            f"{at('runtime.max_cost')}: deprecated (it counts tokens); "
            "use runtime.max_tokens, or runtime.max_cost_usd to limit money"
        )
        if runtime.max_tokens is None:
            runtime = msgspec.structs.replace(runtime, max_tokens=int(runtime.max_cost))
            config = msgspec.structs.replace(config, runtime=runtime)
    return config, warnings


def _url_problems(url: str, where: str) -> list[str]:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        return [f"{where}: not a valid URL ({exc}): {url!r}"]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"{where}: expected an http:// or https:// URL with a host, got {url!r}"]
    if any(c in url for c in "\r\n\t ") or any(ord(c) < 32 for c in url):
        return [f"{where}: a URL must not contain spaces or control characters: {url!r}"]
    return []


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _header_problems(name: str, value: str, where: str) -> list[str]:
    if not name or not set(name) <= _TOKEN:
        return [f"{where}: {name!r} is not a valid HTTP header name"]
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
        return [
            f"{where}: header {name!r} has a control character (CR, LF, ...) in its value; "
            "headers cannot carry line breaks"
        ]
    return []


def _file_problems(name: str, where: str) -> list[str]:
    from pathlib import Path

    path = Path(name).expanduser()
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        return [f"{where}: cannot read {path}: {exc.strerror or exc}"]
    return []


def _version_problems(config: AgentConfig) -> list[str]:
    parts = config.config_version.split(".")
    if not all(p.isdigit() for p in parts):
        return [f"expected a version like '1.0.0', got {config.config_version!r}"]
    if parts[0] != "1":
        return [
            f"config_version {config.config_version!r} is not supported "
            "(this Oxydra reads major version 1)"
        ]
    return []


def _timezone_problems(config: AgentConfig, at: object) -> list[str]:
    """A bad zone where the scheduler uses it (its tools exist only when it is on).

    Not checked otherwise: loading `zoneinfo` for a key nothing reads costs every command.
    """
    if not config.scheduler.enabled:
        return []
    import zoneinfo

    name = config.scheduler.default_timezone
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        assert callable(at)
        return [f"{at('scheduler.default_timezone')}: unknown IANA time zone {name!r}"]
    return []


_SERVER_NAME = re.compile(r"[A-Za-z0-9_-]{1,48}")


def _mcp_problems(config: AgentConfig, at: Callable[[str], str]) -> list[str]:
    problems: list[str] = []
    for name, server in config.mcp.servers.items():
        key = f"mcp.servers.{name}"
        if not _SERVER_NAME.fullmatch(name):
            problems.append(f"{at(key)}: a server name must be 1-48 of A-Z a-z 0-9 _ -")
        if (server.command is None) == (server.url is None):
            problems.append(f"{at(key)}: give exactly one of 'command' (stdio) or 'url' (HTTP)")
        if server.url is not None and server.transport == "stdio":
            problems.append(f"{at(key + '.transport')}: 'stdio' needs 'command', not 'url'")
        if server.command is not None and server.transport in ("streamable_http", "sse"):
            problems.append(f"{at(key + '.transport')}: {server.transport!r} needs 'url'")
    return problems


def _bind_problems(bind: str, where: str) -> list[str]:
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        return [f"{where}: expected host:port, got {bind!r}"]
    return []
