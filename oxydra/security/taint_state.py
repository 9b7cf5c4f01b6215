"""Taint bookkeeping that outlives a turn: tainted workspace files and the audit log.

Invariants:

1. `TaintedPaths` maps virtual paths (`/shared/x.md`) to the label of the content last
   written there. A write from a tainted step records the label; a whole-file write from
   a trusted step clears it; a partial edit never clears it. The table is a JSON file in
   the workspace (`.oxydra/tainted_paths.json`), replaced atomically, so it survives
   restarts; it holds at most `max_entries` paths (the oldest are kept: taint is never
   dropped to make room, new entries past the cap taint the whole workspace root).
2. `AuditLog` appends one JSON line per gated call and the person's answer to
   `logs/taint-audit.jsonl`; each line is written whole with one `write`.

Both are synchronous and small; callers on the event loop run them in a thread.
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from oxydra.core.provenance import Label, merge

_paths_decoder = msgspec.json.Decoder(dict[str, Label])
_encoder = msgspec.json.Encoder()
OVERFLOW_KEY = "/"


def virtual_path(path: str) -> str:
    """A virtual path in canonical form; relative paths are under /shared."""
    path = path.strip().replace("\\", "/")
    if not path.startswith("/"):
        path = "/shared/" + path
    return posixpath.normpath(path)


class TaintedPaths:
    """Which workspace files hold untrusted content (rule 1); `path=None` keeps it in memory."""

    def __init__(self, path: Path | None = None, *, max_entries: int = 10_000) -> None:
        self.path = path
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._table: dict[str, Label] = {}
        if path is not None and path.is_file():
            try:
                self._table = _paths_decoder.decode(path.read_bytes())
            except msgspec.DecodeError:
                # A damaged table must fail closed: treat the whole workspace as tainted.
                self._table = {OVERFLOW_KEY: Label(sources=())}

    def __len__(self) -> int:
        return len(self._table)

    def label_for(self, path: str) -> Label | None:
        """The label of a file, or of the files under a directory (a search reads them)."""
        target = virtual_path(path)
        return self._matching(lambda key: key == target or key.startswith(target.rstrip("/") + "/"))

    def mentioned_in(self, text: str) -> Label | None:
        """The labels of tainted files whose path occurs in `text` (a shell command)."""
        return self._matching(lambda key: key in text or _relative_in(key, text))

    def _matching(self, wanted: Callable[[str], bool]) -> Label | None:
        """The merged labels of the keys `wanted` picks (all of them once the table overflowed)."""
        with self._lock:
            if OVERFLOW_KEY in self._table:
                return self._table[OVERFLOW_KEY]
            found = [label for key, label in self._table.items() if wanted(key)]
        return merge(*found)

    def record(self, path: str, label: Label | None, *, whole_file: bool = True) -> None:
        """Note a write: tainted writes taint the file; a trusted whole-file write clears it."""
        target = virtual_path(path)
        with self._lock:
            if label is None or not label.untrusted:
                if not whole_file or target not in self._table:
                    return
                del self._table[target]
            else:
                key = target if len(self._table) < self.max_entries else OVERFLOW_KEY
                self._table[key] = merge(self._table.get(key), label) or label
            self._save()

    def forget(self, path: str) -> None:
        """The file (or tree) was deleted: its entries go."""
        target = virtual_path(path)
        with self._lock:
            gone = [k for k in self._table if k == target or k.startswith(target + "/")]
            for key in gone:
                del self._table[key]
            if gone:
                self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        temporary.write_bytes(_encoder.encode(self._table))
        os.replace(temporary, self.path)


def _relative_in(key: str, text: str) -> bool:
    relative = key.removeprefix("/shared/")
    return relative != key and len(relative) >= 4 and relative in text


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One gated call: what was asked, under which taint, and the answer (rule 2)."""

    at: str
    user_id: str
    session_id: str
    tool: str
    impact: str
    action: str
    answer: str
    sources: tuple[str, ...]
    arguments: dict[str, Any]
    call_id: str | None = None
    reason: str = ""


class AuditLog:
    """JSON lines of gated calls; `path=None` keeps them in memory only (tests, `ask`)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.entries: list[AuditEntry] = []
        self._lock = threading.Lock()

    def append(self, entry: AuditEntry) -> None:
        """Record one entry (kept in memory too, the last 1000)."""
        line = _encoder.encode(entry) + b"\n"
        with self._lock:
            self.entries = [*self.entries[-999:], entry]
            if self.path is None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
