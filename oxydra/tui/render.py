"""Lay the state out on a screen of a given size: pure, one styled row per screen line.

Layout, top to bottom: the message pane (scrollable), the status bar, the input bar (1 to 10
rows, growing with multi-line input). Every text drawn passes `terminal_safe` first: what
the model, a tool or the server sends can hold escape sequences.
"""

from __future__ import annotations

import textwrap

from oxydra.core.terminal import terminal_safe
from oxydra.tui.model import MAX_INPUT_ROWS, Entry, TuiState, short_session_id
from oxydra.wire.gateway import UsageTotals

PREFIX = {"user": "you ▸ ", "assistant": "oxydra ▸ ", "system": "· ", "error": "! "}
CURSOR = "▌"
HINT_IDLE = "/help · Ctrl+D quit"
HINT_TURN = "Ctrl+C cancel · Ctrl+C twice quit"


def wrap_entry(entry: Entry, width: int) -> list[tuple[str, str]]:
    """An entry as styled rows no wider than `width`, escape sequences and controls removed."""
    prefix = PREFIX[entry.role]
    rows: list[tuple[str, str]] = []
    indent = " " * len(prefix)
    for i, paragraph in enumerate(terminal_safe(entry.text).split("\n") or [""]):
        lead = prefix if i == 0 else indent
        wrapped = textwrap.wrap(
            paragraph,
            width=max(8, width - len(prefix)),
            drop_whitespace=False,
            replace_whitespace=False,
        ) or [""]
        rows += [
            (entry.role, (lead if j == 0 else indent) + part) for j, part in enumerate(wrapped)
        ]
    return rows


def pane_rows(state: TuiState, width: int) -> list[tuple[str, str]]:
    """Every row of the message pane, oldest first."""
    rows: list[tuple[str, str]] = []
    for entry in state.entries:
        rows += wrap_entry(entry, width)
    if state.streaming is not None:
        rows += wrap_entry(Entry("assistant", state.streaming + CURSOR), width)
    return rows


def status_row(state: TuiState, width: int) -> str:
    """The status bar: connection, session, cost, activity; help and quit hints at the right.

    The hint is dropped before anything else when the screen is narrow.
    """
    parts = [f" {state.connection}", f"session {short_session_id(state.session_id)}"]
    if state.cost is not None:
        parts.append(cost_text(state.cost))
    if state.activity:
        parts.append(state.activity)
    if state.scroll:
        parts.append(f"scrolled {state.scroll}")
    left = terminal_safe(" │ ".join(parts))
    hint = (HINT_TURN if state.active_turn else HINT_IDLE) + " "
    if len(left) + len(hint) + 3 <= width:
        return left + hint.rjust(width - len(left))
    return left[:width].ljust(width)


def cost_text(total: UsageTotals) -> str:
    """`$0.0123 · 4.2k tok`; a session with an unpriced call shows `cost unknown`."""
    tokens = total.input_tokens + total.output_tokens
    amount = "cost unknown" if total.cost_usd is None else f"${total.cost_usd:.4f}"
    shown = f"{tokens / 1000:.1f}k" if tokens >= 1000 else str(tokens)
    return f"{amount} · {shown} tok"


def layout(state: TuiState, width: int, height: int) -> list[tuple[str, str]]:
    """The whole screen as `height` styled rows."""
    input_rows = min(MAX_INPUT_ROWS, len(state.input_lines))
    pane_height = max(1, height - input_rows - 1)
    rows = pane_rows(state, width)
    state.scroll = min(state.scroll, max(0, len(rows) - pane_height))
    end = len(rows) - state.scroll
    visible = rows[max(0, end - pane_height) : end]
    screen = [("blank", "")] * (pane_height - len(visible)) + visible
    screen.append(("status", status_row(state, width)))
    for i, line in enumerate(state.input_lines[-input_rows:]):
        lead = "> " if i == 0 else "  "
        screen.append(("input", (lead + terminal_safe(line))[-width:]))
    return screen[:height]
