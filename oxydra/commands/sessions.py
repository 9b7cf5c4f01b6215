"""`oxydra sessions`: the session lifecycle from the command line (docs/sessions.md).

The same `SessionBook` verbs as the TUI's slash commands and the gateway frames, on the
workspace's store directly, so they work with no `vm` running. A delete while a `vm`
serves the workspace is refused: the `vm` holds the session's live state, so the delete
must go through it (`/delete` in the TUI), which cancels a running turn first.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import msgspec

from oxydra.config.workspace import resolve_workspace

ACTIONS = ("list", "rename", "archive", "unarchive", "delete", "export", "audit", "prune")


def run_sessions(args: argparse.Namespace) -> int:
    """Entry of `oxydra sessions`."""
    from oxydra.app.ask import default_user
    from oxydra.config.loader import ConfigSources, load_agent_config

    config = load_agent_config(ConfigSources(overrides=args.overrides)).config
    user = default_user(args.user)
    workspace = resolve_workspace(user, args.workspace)
    if not (workspace / ".oxydra").is_dir():
        print(f"oxydra sessions: no sessions yet for user '{user}' ({workspace})", file=sys.stderr)
        return 0 if args.action in ("list", "audit") else 2
    return asyncio.run(_run(config, user, workspace, args))


async def _run(config: Any, user: str, workspace: Path, args: argparse.Namespace) -> int:
    from oxydra.app.schemas import OWNER_SCHEMAS
    from oxydra.gateway import MemorySessionRecords, RefusedError, SessionBook
    from oxydra.memory import HashedEmbedder, Memory

    memory = await Memory.from_config(
        config.memory,
        workspace_root=workspace,
        embedder=None if config.memory.enabled else HashedEmbedder(),
        schemas=OWNER_SCHEMAS,
    )
    try:
        book = SessionBook(MemorySessionRecords(memory), memory)
        args.retain_days = args.days or config.sessions.retain_days
        return await _act(book, user, workspace, args)
    except RefusedError as exc:
        print(f"oxydra sessions: {exc}", file=sys.stderr)
        return 2
    finally:
        await memory.close()


async def _act(book: Any, user: str, workspace: Path, args: argparse.Namespace) -> int:
    target: str = args.session or ""
    if args.action not in ("list", "audit", "prune") and not target:
        print(f"oxydra sessions {args.action}: name the session (id or prefix)", file=sys.stderr)
        return 2
    match args.action:
        case "list":
            rows = await book.listing(user, args.all, args.subagents)
            print(_json(rows) if args.json else _table(rows), end="")
        case "rename":
            row = await book.rename(user, target, args.name, "cli")
            print(f"renamed {row.session_id} to {row.display_name or '(no name)'}")
        case "archive" | "unarchive":
            row = await book.archive(user, target, "cli", args.action == "archive")
            print(f"{args.action}d {row.session_id}")
        case "delete":
            return await _delete(book, user, workspace, target)
        case "export":
            _, text = await book.export(user, target, args.format, "cli")
            if args.output:
                Path(args.output).write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
        case "prune":
            return await _prune(book, workspace, args)
        case "audit":
            log = await book.audit_log(user)
            print(_json(log) if args.json else "".join(_audit_line(e) for e in log), end="")
    return 0


async def _delete(book: Any, user: str, workspace: Path, target: str) -> int:
    if (workspace / "ipc" / "gateway-endpoint").is_file():
        print(
            "oxydra sessions delete: a vm is serving this workspace; delete through it "
            "(`/delete <id>` in the TUI) so a running turn is cancelled first",
            file=sys.stderr,
        )
        return 2
    removed = await book.delete(user, target, "cli")
    print(
        f"deleted {removed[-1]}"
        + (f" and {len(removed) - 1} sub-agent sessions" * (len(removed) > 1))
    )
    return 0


async def _prune(book: Any, workspace: Path, args: argparse.Namespace) -> int:
    days = args.retain_days
    if days is None:
        print("oxydra sessions prune: set [sessions] retain_days (or --days N)", file=sys.stderr)
        return 2
    if (workspace / "ipc" / "gateway-endpoint").is_file():
        print("oxydra sessions prune: a vm is serving this workspace (it prunes at start)",
              file=sys.stderr)  # fmt: skip
        return 2
    removed = await book.prune(days)
    print(f"deleted {len(removed)} sessions archived and idle for more than {days} days")
    return 0


def _table(rows: list[Any]) -> str:
    if not rows:
        return "(no sessions)\n"
    lines = []
    for row in rows:
        cost = "-" if row.cost_usd is None else f"${row.cost_usd:.4f}"
        indent = "  └ " if row.parent_session_id else ""
        flags = " [archived]" if row.archived else ""
        lines.append(
            f"{indent}{row.session_id}  {row.display_name or '-'}  {row.channel_origin}  "
            f"created {row.created_at}  active {row.last_active_at}  "
            f"turns {row.turns or 0}  cost {cost}{flags}"
        )
    return "\n".join(lines) + "\n"


def _audit_line(entry: Any) -> str:
    moved = f" (from {entry.old_session_id})" if entry.old_session_id else ""
    detail = f" {entry.detail}" if entry.detail else ""
    return f"{entry.at}  {entry.channel}  {entry.action}  {entry.session_id}{moved}{detail}\n"


def _json(items: list[Any]) -> str:
    return "".join(msgspec.json.encode(item).decode() + "\n" for item in items)
