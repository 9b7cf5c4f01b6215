"""`oxydra persona show`: which persona files a new session would load, and from where."""

from __future__ import annotations

import argparse
from pathlib import Path

from oxydra.config.persona import PERSONA_BUDGET_BYTES, PERSONA_FILES, load_persona
from oxydra.config.workspace import resolve_workspace


def run_persona(args: argparse.Namespace) -> int:
    """Print, per persona file, the winning path, its sha256 and its size against the budget."""
    print(render_persona(_workspace(args)), end="")
    return 0


def render_persona(
    workspace: Path | None, *, cwd: Path | None = None, home: Path | None = None
) -> str:
    """The `persona show` text for a workspace (None: the config layers only)."""
    persona = load_persona(workspace, cwd=cwd, home=home)
    found = {f.name: f for f in persona.files()}
    lines = []
    for name in PERSONA_FILES:
        item = found.get(name)
        if item is None:
            lines.append(f"{name}: not found")
            continue
        cut = " (TRUNCATED)" if item.truncated else ""
        lines.append(f"{name}: {item.path}")
        lines.append(f"  sha256 {item.sha256}")
        lines.append(f"  size {item.size} of {PERSONA_BUDGET_BYTES} bytes{cut}")
        lines += [f"  shadows {p}" for p in item.shadowed]
    return "\n".join(lines) + "\n"


def _workspace(args: argparse.Namespace) -> Path | None:
    if args.workspace or args.user:
        return resolve_workspace(args.user or "default", args.workspace)
    return None
