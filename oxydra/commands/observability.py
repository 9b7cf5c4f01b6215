"""`oxydra usage` and `oxydra trace`: the ledger and the span store, read from the terminal.

Both read `<workspace>/.oxydra/observability.db` read-only, so they work while the guest
runs and never change it. Unknown cost (a model without a catalog price) is shown as
unknown and kept apart from known cost, never added as 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sqlite3
import sys
import time
from pathlib import Path

from oxydra.core.errors import ConfigError
from oxydra.observability._store import db_path, load_trace, open_db, recent_turns
from oxydra.observability._waterfall import render_waterfall

GROUPS = {
    "person": "person",
    "session": "session",
    "model": "model",
    "agent": "agent",
    "day": "date(started_at, 'unixepoch')",
}
_SINCE = re.compile(r"(\d{1,6})([hdw])")


def parse_since(text: str | None, now: float | None = None) -> float:
    """Seconds since the epoch from `7d`, `12h`, `2w` or an ISO date; 0 without a value."""
    if not text:
        return 0.0
    now = time.time() if now is None else now
    match = _SINCE.fullmatch(text.strip())
    if match:
        unit = {"h": 3600, "d": 86400, "w": 604800}[match[2]]
        return now - int(match[1]) * unit
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConfigError(
            f"--since {text!r}: expected 12h, 7d, 2w or an ISO date like 2026-01-31"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def usage_rows(db: sqlite3.Connection, by: str, since: float) -> list[dict[str, object]]:
    """Totals per group: turns, calls, tokens by kind, known USD and unpriced turns."""
    key = GROUPS[by]
    cursor = db.execute(
        f"SELECT {key} AS k, count(*), sum(calls), sum(input_tokens), sum(output_tokens), "
        "sum(cache_read_tokens), sum(reasoning_tokens), sum(priced_cost_usd), "
        "sum(unpriced_calls > 0) FROM usage WHERE started_at >= ? GROUP BY k ORDER BY k",
        (since,),
    )
    rows = []
    for k, turns, calls, tin, tout, cached, reasoning, known, unpriced in cursor:
        rows.append(
            {
                by: k,
                "turns": turns,
                "calls": calls,
                "input_tokens": tin,
                "output_tokens": tout,
                "cache_read_tokens": cached,
                "reasoning_tokens": reasoning,
                "cost_usd": None if unpriced else round(known, 6),
                "priced_cost_usd": round(known, 6),
                "unpriced_turns": unpriced,
            }
        )
    return rows


def _cost(row: dict[str, object]) -> str:
    known = f"${row['priced_cost_usd']:.4f}"
    if row["unpriced_turns"]:
        return f"{known} + unknown ({row['unpriced_turns']} turns without a price)"
    return known


def _open(args: argparse.Namespace) -> sqlite3.Connection | None:
    from oxydra.config.workspace import resolve_workspace

    workspace = resolve_workspace(args.user or "default", args.workspace)
    path = db_path(Path(workspace))
    if not path.exists():
        print(f"no usage recorded yet ({path} does not exist)", file=sys.stderr)
        return None
    return open_db(path, readonly=True)


def run_usage(args: argparse.Namespace) -> int:
    """Entry of `oxydra usage`."""
    db = _open(args)
    if db is None:
        return 1
    rows = usage_rows(db, args.by, parse_since(args.since))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no turns in that period")
        return 0
    width = max(len(str(r[args.by])) for r in rows) + 2
    print(f"{args.by:<{width}}{'turns':>7}{'calls':>7}{'input':>11}{'output':>10}  cost")
    for row in rows:
        print(
            f"{row[args.by]!s:<{width}}{row['turns']:>7}{row['calls']:>7}"
            f"{row['input_tokens']:>11}{row['output_tokens']:>10}  {_cost(row)}"
        )
    return 0


def run_trace(args: argparse.Namespace) -> int:
    """Entry of `oxydra trace`: the waterfall of a turn, or the list of recent turns."""
    db = _open(args)
    if db is None:
        return 1
    if not args.turn_id:
        for turn_id, recorded in recent_turns(db):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(recorded))
            print(f"{stamp}  {turn_id}")
        return 0
    spans = load_trace(db, args.turn_id)
    if spans is None:
        print(
            f"no stored trace for turn {args.turn_id!r} (only the last turns are kept; "
            "run `oxydra trace` to list them)",
            file=sys.stderr,
        )
        return 1
    print("\n".join(render_waterfall(spans)))
    return 0
