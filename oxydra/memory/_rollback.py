"""`store rollback` for SQLite: put back the copy taken before the last schema upgrade.

An upgrade snapshots the database first (`_db.snapshot`, `memory.db.v<old>.bak`). Rolling
back picks the newest snapshot older than the file's version, checks that it is a whole
database at that version, moves the current file (and its WAL) aside as
`memory.db.v<version>.replaced` — the writes made since the upgrade are kept there, not
deleted — and moves the snapshot into place. A `vm` writing or reading the file at that
moment is detected (exclusive lock, checkpoint) and refused; stop it first. The vector
index beside the file is resynchronised at the next open (its generation no longer
matches).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import msgspec

from oxydra.core import MemoryStoreError

_SNAPSHOT = re.compile(r"\.v(\d+)\.bak$")


class RolledBack(msgspec.Struct, frozen=True, kw_only=True):
    """What a rollback did."""

    from_version: int
    to_version: int
    kept: Path


def _version(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT max(version) FROM memory_migrations").fetchone()
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise MemoryStoreError(f"{path} is damaged (quick_check failed)")
        return int(row[0] or 0)
    finally:
        conn.close()


def rollback(path: Path) -> RolledBack:
    """Restore the newest pre-upgrade snapshot of the database at `path`.

    Raises:
        MemoryStoreError: no snapshot older than the file, the file is in use, or the
            snapshot is not a whole database.
    """
    try:
        current = _version(path)
    except sqlite3.Error as exc:
        raise MemoryStoreError(f"cannot read the schema version of {path}: {exc}") from exc
    found = sorted(
        (int(m[1]), p)
        for p in path.parent.glob(path.name + ".v*.bak")
        if (m := _SNAPSHOT.search(p.name)) and int(m[1]) < current
    )
    if not found:
        raise MemoryStoreError(
            f"no snapshot of {path} older than its schema version {current}",
            hint="snapshots are taken when a newer program upgrades the file; none was",
        )
    version, snapshot = found[-1]
    try:
        if _version(snapshot) != version:
            raise MemoryStoreError(f"snapshot {snapshot} is not at schema version {version}")
    except sqlite3.Error as exc:
        raise MemoryStoreError(f"snapshot {snapshot} is unreadable: {exc}") from exc
    _refuse_in_use(path)
    kept = path.with_name(f"{path.name}.v{current}.replaced")
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(kept.with_name(kept.name + suffix))
    path.replace(kept)
    snapshot.replace(path)
    return RolledBack(from_version=current, to_version=version, kept=kept)


def _refuse_in_use(path: Path) -> None:
    """A write in progress elsewhere is refused; an idle `vm` holds no lock, so stopping it
    first stays the operator's step (the command says so)."""
    conn = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("COMMIT")
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            raise sqlite3.OperationalError("another connection is reading it")
    except sqlite3.OperationalError as exc:
        raise MemoryStoreError(
            f"{path} is in use ({exc})", hint="stop the vm that uses it, then roll back"
        ) from exc
    finally:
        conn.close()
