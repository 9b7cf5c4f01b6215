"""`oxydra mcp list|check|import|serve`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import msgspec

from oxydra.config.loader import ConfigSources, load_agent_config
from oxydra.config.schema import AgentConfig
from oxydra.core.errors import ConfigError


def run_mcp(args: argparse.Namespace) -> int:
    """Dispatch the `mcp` action."""
    if args.action == "import":
        return _import(args)
    environ = dict(os.environ)
    loaded = load_agent_config(ConfigSources(environ=environ, overrides=args.overrides))
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    from oxydra.app.ask import default_user
    from oxydra.config.workspace import resolve_workspace

    user = default_user(args.user)
    workspace = resolve_workspace(user, args.workspace)
    if args.action == "serve":
        from oxydra.app.mcp_serve import run_serve

        return asyncio.run(
            run_serve(loaded.config, user_id=user, workspace=workspace, environ=environ)
        )
    return _list(loaded.config, workspace, environ, check=args.action == "check", as_json=args.json)


def _list(
    config: AgentConfig, workspace: Path, environ: dict[str, str], *, check: bool, as_json: bool
) -> int:
    from oxydra.app.mcp_status import check_warnings, inspect_servers, render_status

    if not config.mcp.servers:
        print("no MCP servers configured ([mcp.servers.<name>] in agent.toml)")
        return 0
    statuses, size, search = asyncio.run(
        inspect_servers(config, workspace=workspace, environ=environ)
    )
    if as_json:
        doc = {"servers": statuses, "schema_bytes": size, "search_mode": search}
        sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")
    else:
        sys.stdout.write(render_status(statuses, size, search))
    if not check:
        return 0
    warnings = check_warnings(config)
    for warning in warnings:
        print(f"warning: {warning}")
    failed = [s.name for s in statuses if s.state == "failed"]
    for name in failed:
        print(f"error: MCP server '{name}' did not start")
    return 1 if failed else 0


def _import(args: argparse.Namespace) -> int:
    from oxydra.tools.mcp import import_mcp_servers

    if not args.file:
        raise ConfigError("mcp import needs a FILE (an mcpServers JSON file)")
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    text, notes = import_mcp_servers(data, str(path))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.append:
        target = Path(args.append)
        existing = target.read_text() if target.exists() else ""
        separator = "\n" if existing and not existing.endswith("\n\n") else ""
        target.write_text(existing + separator + text)
        print(f"appended {text.count('[mcp.servers.')} server(s) to {target}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
