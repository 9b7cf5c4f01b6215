"""A turn's span tree as a terminal waterfall: where the time and the money went.

Pure: records in, lines out. Children sit under their parent in start order; a span whose
parent is not in the set (the remote caller, a dropped span) is drawn as a root. Bars are
placed on a shared time axis `width` columns wide, so overlapping tool calls are visible.
"""

from __future__ import annotations

from collections import defaultdict

from oxydra.observability._records import SpanRecord


def render_waterfall(spans: list[SpanRecord], width: int = 40) -> list[str]:
    """Lines of the waterfall, a header first; empty input gives one explaining line."""
    if not spans:
        return ["(no spans)"]
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRecord]] = defaultdict(list)
    for record in spans:
        parent = record.parent_id if record.parent_id in ids else None
        children[parent].append(record)
    for group in children.values():
        group.sort(key=lambda s: (s.start_ns, s.span_id))
    start = min(s.start_ns for s in spans)
    total = max(max(s.end_ns for s in spans) - start, 1)
    lines = [f"trace {spans[0].trace_id}  total {_ms(total)}"]
    name_width = min(max(len(s.name) for s in spans) + 2 * _depth(spans) + 2, 60)
    stack = [(r, 0) for r in reversed(children[None])]
    while stack:
        record, depth = stack.pop()
        label = ("  " * depth + record.name)[:name_width].ljust(name_width)
        bar = _bar(record, start, total, width)
        lines.append(f"{label} {bar} {_ms(record.end_ns - record.start_ns):>9} {_extra(record)}")
        stack += [(c, depth + 1) for c in reversed(children[record.span_id])]
    return [line.rstrip() for line in lines]


def _depth(spans: list[SpanRecord]) -> int:
    parent = {s.span_id: s.parent_id for s in spans}
    deepest = 0
    for record in spans:
        depth, at = 0, record.parent_id
        while at in parent and depth < len(spans):
            depth, at = depth + 1, parent[at]
        deepest = max(deepest, depth)
    return deepest


def _bar(record: SpanRecord, start: int, total: int, width: int) -> str:
    left = int((record.start_ns - start) / total * width)
    length = max(1, round((record.end_ns - record.start_ns) / total * width))
    left = min(left, width - 1)
    length = min(length, width - left)
    mark = "!" if record.error else "█"
    return "|" + " " * left + mark * length + " " * (width - left - length) + "|"


def _ms(ns: int) -> str:
    ms = ns / 1e6
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.1f} ms"


def _extra(record: SpanRecord) -> str:
    attrs = record.attrs
    parts: list[str] = []
    tokens_in = attrs.get("gen_ai.usage.input_tokens")
    tokens_out = attrs.get("gen_ai.usage.output_tokens")
    if tokens_in is not None or tokens_out is not None:
        parts.append(f"tokens {tokens_in or 0}→{tokens_out or 0}")
    if record.name.startswith(("chat ", "invoke_agent ")):
        cost = attrs.get("gen_ai.usage.cost")
        parts.append(f"${cost:.6f}" if isinstance(cost, int | float) else "cost unknown")
    for key in ("oxydra.outcome", "oxydra.calls"):
        if key in attrs:
            parts.append(f"{key.removeprefix('oxydra.')}={attrs[key]}")
    if attrs.get("oxydra.truncated") is True:
        parts.append("truncated")
    if attrs.get("oxydra.scrubbed") is True:
        parts.append("scrubbed")
    if record.error:
        parts.append(f"error={record.error}")
    parts += [f"[{e.name}]" for e in record.events]
    return " ".join(parts)
