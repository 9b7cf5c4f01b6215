"""Reading a guest's log files for `runner logs` (through the daemon, or directly).

Rules, as in the Rust runner: each selected file is tailed first, then the merged lines
are clamped to the tail again; `since` compares lexicographically against a line's leading
RFC 3339 timestamp (a line without one, such as a traceback's continuation, inherits the
timestamp of the line above it); the whole answer stays under ~120 KiB, keeping the newest
lines and saying it was truncated.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from oxydra.runner._workspace import UserWorkspace
from oxydra.wire.control import (
    MAX_LOG_PAYLOAD_BYTES,
    MAX_LOG_TAIL,
    LogEntry,
    LogsRequest,
    LogsResponse,
)

DEFAULT_TAIL = 200
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s?(.*)$")
_ROLES = {"runtime": ("oxydra-vm",), "sidecar": ("shell-vm",), "all": ("oxydra-vm", "shell-vm")}
_STREAMS = {"stdout": ("stdout",), "stderr": ("stderr",), "both": ("stdout", "stderr")}
_ROLE_NAME = {"oxydra-vm": "runtime", "shell-vm": "sidecar"}
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def read_logs(workspace: UserWorkspace, request: LogsRequest, *, docker: bool) -> LogsResponse:
    """The requested lines, oldest first."""
    tail = min(request.tail or DEFAULT_TAIL, MAX_LOG_TAIL)
    source = "docker_api" if docker else "process_file"
    entries: list[LogEntry] = []
    for role in _ROLES[request.role]:
        for stream in _STREAMS[request.stream]:
            path = workspace.log_file(role, stream)
            entries += _tail_file(path, tail, request.since, role, stream, source)
    entries.sort(key=lambda e: e.timestamp or "")
    truncated = len(entries) > tail
    entries = entries[-tail:]
    entries, clipped = _fit(entries)
    return LogsResponse(entries=entries, truncated=truncated or clipped)


def _tail_file(
    path: Path, tail: int, since: str | None, role: str, stream: str, source: str
) -> list[LogEntry]:
    lines: deque[tuple[str | None, str]] = deque(maxlen=tail)
    last_ts: str | None = None
    try:
        with path.open("rb") as fh:
            for raw in fh:
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                match = _TIMESTAMP.match(text)
                if match:
                    last_ts, text = match.group(1), match.group(2)
                if since is None or (last_ts is not None and last_ts >= since):
                    lines.append((last_ts, text))
    except OSError:
        return []
    return [
        LogEntry(
            source=source,  # type: ignore[arg-type]
            role=_ROLE_NAME[role],  # type: ignore[arg-type]
            stream=stream,  # type: ignore[arg-type]
            message=message,
            timestamp=ts,
        )
        for ts, message in lines
    ]


def _fit(entries: list[LogEntry]) -> tuple[list[LogEntry], bool]:
    size = 0
    for index in range(len(entries) - 1, -1, -1):
        size += len(entries[index].message) + 96
        if size > MAX_LOG_PAYLOAD_BYTES:
            return entries[index + 1 :], True
    return entries, False


def parse_since(text: str, now: datetime | None = None) -> str:
    """`--since`: an RFC 3339 time, or `N` s/m/h/d ago, as an RFC 3339 UTC string."""
    match = _DURATION.match(text.strip())
    if match:
        now = now or datetime.now(UTC)
        delta = timedelta(**{_UNIT[match.group(2)]: int(match.group(1))})
        return (now - delta).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"--since {text!r}: expected RFC 3339 or Ns/Nm/Nh/Nd") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_entry(entry: LogEntry, fmt: str) -> str:
    """One line of `runner logs` output: text as upstream, or JSON."""
    if fmt == "json":
        return msgspec.json.encode(entry).decode()
    ts = entry.timestamp or "-"
    return f"{ts} [{entry.source}][{entry.role}][{entry.stream}] {entry.message}"
