"""`oxydra store status|migrate|rollback`: look at the configured store, copy it to the other
backend (SQLite <-> PostgreSQL) and prove the copy equal, or put back the SQLite snapshot
taken before the last schema upgrade (docs/postgres.md).

`migrate --to postgresql://...` copies the configured SQLite store into an empty PostgreSQL
database (or `--to /path/memory.db` the other way) while a `vm` may go on answering from the
source; the copy is compared table by table (row counts and SHA-256). Switching the config
to the target is the operator's step after that, so nothing is switched by a failed copy.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from oxydra.config.loader import ConfigSources, load_agent_config
from oxydra.config.schema import MemoryConfig
from oxydra.config.workspace import resolve_workspace
from oxydra.core import ConfigError

if TYPE_CHECKING:
    from oxydra.memory import MemoryStore


def run_store(args: argparse.Namespace) -> int:
    """Dispatch `store status` / `store migrate`."""
    config = load_agent_config(ConfigSources(overrides=args.overrides)).config
    workspace = resolve_workspace(args.user or "default", args.workspace)
    if args.action == "status":
        print(status(config.memory, workspace), end="")
        return 0
    if args.action == "rollback":
        print(rollback(config.memory, workspace), end="")
        return 0
    if not args.to:
        raise ConfigError("store migrate needs --to (a postgresql:// URL or a SQLite path)")
    print(migrate(config.memory, workspace, args.to), end="")
    return 0


def _open(memory: MemoryConfig, workspace: Path) -> MemoryStore:
    from oxydra.app.schemas import OWNER_SCHEMAS
    from oxydra.memory import MemoryStore, resolve_db_path
    from oxydra.memory._pg import connect_configured

    schemas = OWNER_SCHEMAS
    if memory.backend == "postgres":
        return MemoryStore(connect_configured(memory, os.environ), schemas=schemas)
    return MemoryStore(resolve_db_path(memory, workspace), schemas=schemas)


def status(memory: MemoryConfig, workspace: Path) -> str:
    """Backend, where, schema version and each table's rows and hash."""
    from oxydra.memory._transfer import fingerprint

    with _open(memory, workspace) as store:
        lines = [
            f"backend: {memory.backend}",
            f"store: {store.db.path}",
            f"schema version: {store.schema_version}",
        ]
        for table, mark in fingerprint(store.db).items():
            lines.append(f"  {table}: {mark.rows} rows, sha256 {mark.sha256[:16]}")
    return "\n".join(lines) + "\n"


def rollback(memory: MemoryConfig, workspace: Path) -> str:
    """Put back the SQLite snapshot taken before the last schema upgrade."""
    from oxydra.memory import resolve_db_path
    from oxydra.memory._rollback import rollback as restore

    if memory.backend == "postgres":
        raise ConfigError(
            "store rollback restores SQLite snapshots; a PostgreSQL upgrade runs in one "
            "transaction (a failed one changes nothing), and a finished one is undone from a "
            "pg_dump taken before it"
        )
    done = restore(resolve_db_path(memory, workspace))
    return (
        f"rolled back from schema version {done.from_version} to {done.to_version}; the "
        f"replaced file (with any writes made since the upgrade) is kept as {done.kept}\n"
    )


def migrate(memory: MemoryConfig, workspace: Path, to: str) -> str:
    """Copy the configured store into `to` (the other backend) and verify it."""
    from oxydra.memory._transfer import copy_store

    if to.startswith(("postgresql://", "postgres://")):
        if memory.backend == "postgres":
            raise ConfigError("the configured store is already PostgreSQL; --to a SQLite path")
        target_config = MemoryConfig(
            backend="postgres",
            postgres_url=to,
            postgres_password_env=memory.postgres_password_env,
        )
        config_line = f'[memory]\nbackend = "postgres"\npostgres_url = "{to}"'
    else:
        if memory.backend != "postgres":
            raise ConfigError("the configured store is SQLite; --to a postgresql:// URL")
        target_config = MemoryConfig(db_path=str(Path(to).expanduser().resolve()))
        config_line = f'[memory]\nbackend = "sqlite"\ndb_path = "{target_config.db_path}"'
    with _open(memory, workspace) as source, _open(target_config, workspace) as target:
        if source.schema_version != target.schema_version:
            raise ConfigError(
                f"schema versions differ: source {source.schema_version}, target "
                f"{target.schema_version}"
            )
        prints = copy_store(source.db, target.db)
        rows = sum(p.rows for p in prints.values())
        where = target.db.path
    return (
        f"copied {rows} rows in {len(prints)} tables to {where}; row counts and SHA-256 of "
        f"every table match the source.\nSwitch when ready (stop the vm, set):\n{config_line}\n"
    )
