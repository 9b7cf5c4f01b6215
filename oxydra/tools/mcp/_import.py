"""`mcp import FILE`: the `mcpServers` JSON of desktop chat apps and editors as our TOML.

Read: `{"mcpServers": {"<name>": {command, args, env, cwd} | {url, headers, type}}}` (a file
holding only the inner object is accepted too), `disabled: true` → `enabled = false`, `type`
`sse` → the legacy transport, `http`/`streamable-http`/`streamableHttp` → Streamable HTTP.

Secrets are not copied: a literal `env` value becomes a `${NAME}` reference to a variable of
the same name, a literal header value `${MCP_<SERVER>_<HEADER>}`; the notes list which
variables to set. Values already written as `${VAR}` stay references. Names outside
`[A-Za-z0-9_-]` are sanitised, and the notes say so.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from oxydra.core.errors import ConfigError
from oxydra.tools.mcp._names import sanitize

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ENV_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
_TRANSPORTS = {
    "sse": "sse",
    "http": "streamable_http",
    "streamable-http": "streamable_http",
    "streamableHttp": "streamable_http",
    "stdio": "stdio",
}


def import_mcp_servers(data: bytes, source: str) -> tuple[str, list[str]]:
    """TOML for `[mcp.servers.*]` from `mcpServers` JSON, and notes for the user.

    Raises:
        ConfigError: the file is not JSON or not the expected shape (names the file and key).
    """
    try:
        document = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON ({exc})") from exc
    servers = document.get("mcpServers", document) if isinstance(document, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(f"{source}: expected an object with 'mcpServers'")
    blocks: list[str] = []
    notes: list[str] = []
    for raw_name, entry in servers.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: mcpServers.{raw_name} must be an object")
        name = sanitize(str(raw_name))[:48] or "server"
        if name != raw_name:
            notes.append(f"server {raw_name!r} is named {name!r} here")
        blocks.append(_server(name, entry, f"{source}: mcpServers.{raw_name}", notes))
    return "\n".join(blocks), notes


def _server(name: str, entry: dict[str, Any], where: str, notes: list[str]) -> str:
    lines = [f"[mcp.servers.{_key(name)}]"]
    command, url = entry.get("command"), entry.get("url")
    if isinstance(command, str) and command:
        lines.append(f"command = {_str(command)}")
        args = entry.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ConfigError(f"{where}.args must be a list of strings")
        lines.append(f"args = [{', '.join(_str(a) for a in args)}]")
        if isinstance(entry.get("cwd"), str):
            lines.append(f"cwd = {_str(entry['cwd'])}")
    elif isinstance(url, str) and url:
        lines.append(f"url = {_str(url)}")
        kind = entry.get("type") or entry.get("transport")
        if isinstance(kind, str) and kind in _TRANSPORTS and kind != "stdio":
            lines.append(f"transport = {_str(_TRANSPORTS[kind])}")
    else:
        raise ConfigError(f"{where}: needs 'command' (stdio) or 'url' (HTTP)")
    if entry.get("disabled") is True:
        lines.append("enabled = false")
    env = _refs(entry.get("env", {}), where + ".env", lambda k: k, notes)
    headers = _refs(
        entry.get("headers", {}), where + ".headers",
        lambda k: f"MCP_{name}_{sanitize(k)}".upper().replace("-", "_"), notes,
    )  # fmt: skip
    lines += _table(f"mcp.servers.{_key(name)}.env", env)
    lines += _table(f"mcp.servers.{_key(name)}.headers", headers)
    return "\n".join(lines) + "\n"


def _refs(values: Any, where: str, variable: Any, notes: list[str]) -> dict[str, str]:
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be an object of strings")
    out: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(value, str):
            raise ConfigError(f"{where}.{key} must be a string")
        if _ENV_REF.match(value):
            out[key] = value
            continue
        var = variable(key)
        out[key] = f"${{{var}}}"
        notes.append(f"{where}.{key}: the value was not copied; set {var} in the environment")
    return out


def _table(header: str, values: dict[str, str]) -> list[str]:
    if not values:
        return []
    return ["", f"[{header}]", *(f"{_key(k)} = {_str(v)}" for k, v in values.items())]


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _str(key)


def _str(value: str) -> str:
    return msgspec.json.encode(value).decode()
