"""The built-in tool set and the secrets the scrubber must know, from the agent config."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from oxydra.config.credentials import resolve_api_key
from oxydra.config.schema import AgentConfig
from oxydra.core.log import get_logger
from oxydra.security import EgressClient, Resolver, Scrubber, SsrfGuard, Workspace
from oxydra.security.confine import shell_sandbox
from oxydra.tools._files import FILE_TOOLS
from oxydra.tools._media import send_media
from oxydra.tools._protocol import Tool
from oxydra.tools._registry import ToolRegistry
from oxydra.tools._scratchpad import InMemoryScratchpad, ScratchpadStore, scratchpad_tools
from oxydra.tools._search import web_search_tool
from oxydra.tools._shell import (
    LocalShellSession,
    ShellSession,
    policy_on_first_use,
    shell_exec_tool,
)
from oxydra.tools._taint import TaintGuard
from oxydra.tools._web import web_fetch_tool

ALLOWLIST_ENV = "OXYDRA_WEB_EGRESS_ALLOWLIST"
_log = get_logger(__name__)


def egress_allowlist(config: AgentConfig, environ: Mapping[str, str]) -> list[str]:
    """`[tools.web_search] egress_allowlist` plus the comma list in OXYDRA_WEB_EGRESS_ALLOWLIST."""
    search = config.tools.web_search
    entries = list(search.egress_allowlist) if search else []
    entries += [e.strip() for e in environ.get(ALLOWLIST_ENV, "").split(",") if e.strip()]
    return entries


def default_tools(
    config: AgentConfig,
    workspace: Workspace | None = None,
    *,
    egress: EgressClient | None = None,
    resolver: Resolver | None = None,
    shell: ShellSession | None = None,
    scratchpad: ScratchpadStore | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Tool]:
    """The built-in tools with the Rust version's names, ready to register.

    File and vault tools use the per-call context's workspace. `shell_exec` is included when
    `[tools.shell] enabled` and a session is given (or a workspace to run a local one in).
    Web tools share one SSRF-guarded client (built from the allowlist unless `egress` is
    given). Scratchpad tools use `scratchpad` or an in-memory store.
    """
    env = os.environ if environ is None else environ
    if egress is None:
        guard = SsrfGuard(resolver=resolver, allowlist=egress_allowlist(config, env))
        egress = EgressClient(guard)
    tools: list[Tool] = [*FILE_TOOLS, send_media]
    tools.append(web_fetch_tool(egress))
    tools.append(web_search_tool(egress, config.tools.web_search, env))
    shell_config = config.tools.shell
    if shell is None and workspace is not None and shell_config.enabled:
        shell = local_shell(config, workspace, env)
    if shell is not None and shell_config.enabled:
        timeout = float(shell_config.command_timeout_secs)
        policy = policy_on_first_use(shell_config)
        tools.append(shell_exec_tool(shell, policy, timeout_secs=timeout))
    tools.extend(scratchpad_tools(scratchpad if scratchpad is not None else InMemoryScratchpad()))
    return tools


def local_shell(
    config: AgentConfig, workspace: Workspace, environ: Mapping[str, str]
) -> LocalShellSession | None:
    """A confined local shell in the workspace, or None when it cannot be confined.

    Without Landlock the shell stays off unless `[tools.shell] allow_unconfined`; the
    reason is logged, and `config show` prints it (`security.confine.shell_status`).
    """
    shared, tmp = workspace.host_path("/shared"), workspace.host_path("/tmp")
    shell_config = config.tools.shell
    sandbox, why = shell_sandbox((shared, tmp), allow_unconfined=shell_config.allow_unconfined)
    if sandbox is None:
        _log.warning("shell_exec disabled: %s", why)
        return None
    if not sandbox.confined:
        _log.warning("shell_exec runs unconfined: %s", why)
    return LocalShellSession(
        shared,
        sandbox=sandbox,
        env_keys=shell_config.env_keys,
        environ=environ,
        secrets=known_secrets(config, environ),
        tmp=tmp,
    )


def known_secrets(config: AgentConfig, environ: Mapping[str, str]) -> list[str]:
    """Every secret value the configuration names: provider keys, tokens, search keys."""
    values: list[str] = []
    for entry in config.providers.registry.values():
        key, _ = resolve_api_key(entry, environ)
        if key:
            values.append(key)
    values += [t for t in (config.gateway.auth_token, config.memory.auth_token) if t]
    search = config.tools.web_search
    if search is not None:
        names = [search.api_key_env, search.engine_id_env, "OXYDRA_WEB_SEARCH_GOOGLE_API_KEY"]
        values += [environ[n] for n in names if n and environ.get(n)]
    values += _mcp_secrets(config, environ)
    return values


def _mcp_secrets(config: AgentConfig, environ: Mapping[str, str]) -> list[str]:
    """Values MCP servers get through `env`/`headers` references (tokens, API keys)."""
    values: list[str] = []
    for server in config.mcp.servers.values():
        for raw in (*server.env.values(), *server.headers.values()):
            name = raw[2:-1] if raw.startswith("${") and raw.endswith("}") else None
            name = raw[4:] if raw.startswith("env:") else name
            if name and len(environ.get(name, "")) >= 8:
                values.append(environ[name])
    return values


def default_scrubber(config: AgentConfig, environ: Mapping[str, str] | None = None) -> Scrubber:
    """A scrubber that knows the configured secrets and every secret-named variable."""
    env = os.environ if environ is None else environ
    return Scrubber.from_environment(env, extra=known_secrets(config, env))


def default_registry(
    config: AgentConfig,
    tools: list[Tool],
    *,
    environ: Mapping[str, str] | None = None,
    workspace: Path | None = None,
) -> ToolRegistry:
    """A registry with `[tools]` policy, the default scrubber and `tools` registered.

    Its taint guard applies `[security.taint]`, knows the configured secrets (egress
    check) and keeps its tainted-file table and audit log in `workspace` when given.
    """
    env = os.environ if environ is None else environ
    guard = TaintGuard.for_workspace(
        config.security.taint, workspace, environ=env, secrets=known_secrets(config, env)
    )
    registry = ToolRegistry(config.tools, scrubber=default_scrubber(config, env), taint=guard)
    registry.register_all(tools)
    return registry
