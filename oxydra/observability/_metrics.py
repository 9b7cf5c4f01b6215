"""Metrics: one table of instruments, a Prometheus text registry, an optional OTel mirror.

The Prometheus side needs no SDK: counters and histograms are dicts keyed by label values,
rendered in the text exposition format (version 0.0.4) on demand. When OpenTelemetry is
enabled the same measurements also go to its meter (`OtelMetrics` in `_otel.py`).

Rules:
1. Names follow the GenAI conventions where they define one (`gen_ai.client.token.usage`,
   `gen_ai.client.operation.duration`, with their bucket boundaries); ours are `oxydra.*`.
   The Prometheus name replaces dots with underscores and adds the unit suffix.
2. A metric holds at most `max_series` label sets; later ones are counted under the value
   `_other`, so a flood of sessions cannot grow memory without bound.
3. Label values are escaped per the exposition format (backslash, quote, newline).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)  # fmt: skip
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92)  # fmt: skip
OTHER = "_other"
Gauge = Callable[[], "float | dict[str, float]"]


@dataclass(frozen=True)
class Instrument:
    """One metric: its OTel name, kind, unit, description, labels and buckets."""

    name: str
    kind: Literal["counter", "histogram"]
    unit: str
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()

    @property
    def prom_name(self) -> str:
        """The Prometheus name (rule 1)."""
        base = self.name.replace(".", "_")
        suffix = {"s": "_seconds", "USD": "_usd"}.get(self.unit, "")
        base = base if base.endswith(suffix) else base + suffix
        return base + "_total" if self.kind == "counter" else base


INSTRUMENTS: dict[str, Instrument] = {
    i.name: i
    for i in (
        Instrument(
            "gen_ai.client.token.usage", "histogram", "{token}", "Tokens used per provider call",
            ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
             "gen_ai.token.type"), TOKEN_BUCKETS,
        ),
        Instrument(
            "gen_ai.client.operation.duration", "histogram", "s", "Duration of provider calls",
            ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
             "error.type"), DURATION_BUCKETS,
        ),
        Instrument(
            "oxydra.turn.duration", "histogram", "s", "Duration of agent turns",
            ("gen_ai.agent.name", "outcome"), DURATION_BUCKETS,
        ),
        Instrument(
            "oxydra.time_to_first_token", "histogram", "s", "Time to the first streamed chunk",
            ("gen_ai.provider.name", "gen_ai.request.model"), DURATION_BUCKETS,
        ),
        Instrument(
            "oxydra.tool.calls", "counter", "{call}", "Tool calls by tool and outcome",
            ("gen_ai.tool.name", "outcome"),
        ),
        Instrument(
            "oxydra.cost", "counter", "USD", "Cost of priced provider calls",
            ("person", "session", "gen_ai.agent.name", "gen_ai.request.model"),
        ),
        Instrument(
            "oxydra.unpriced_calls", "counter", "{call}", "Provider calls without a price",
            ("gen_ai.request.model",),
        ),
        Instrument(
            "oxydra.channel.delivery_failures", "counter", "{delivery}",
            "Messages a channel could not deliver", ("channel",),
        ),
    )
}  # fmt: skip


class MetricSink(Protocol):
    """Where measurements go: the Prometheus registry, the OTel meter."""

    def record(self, name: str, value: float, labels: tuple[str, ...]) -> None:
        """Add `value` to counter `name`, or observe it on histogram `name`."""


@dataclass
class _Series:
    count: float = 0.0
    total: float = 0.0
    buckets: list[int] = field(default_factory=list)


class PromRegistry:
    """Prometheus text exposition of `INSTRUMENTS` plus callback gauges."""

    def __init__(self, max_series: int = 2000) -> None:
        self.max_series = max_series
        self._series: dict[str, dict[tuple[str, ...], _Series]] = {n: {} for n in INSTRUMENTS}
        self._gauges: dict[str, tuple[str, str, Gauge]] = {}

    def record(self, name: str, value: float, labels: tuple[str, ...]) -> None:
        """Count or observe one measurement (MetricSink)."""
        instrument, table = INSTRUMENTS[name], self._series[name]
        series = table.get(labels)
        if series is None:
            if len(table) >= self.max_series:  # rule 2
                labels = (OTHER,) * len(labels)
            series = table.setdefault(labels, _Series(buckets=[0] * len(instrument.buckets)))
        series.count += 1 if instrument.kind == "histogram" else value
        series.total += value
        if instrument.buckets:  # per-bucket counts; `render` makes them cumulative
            index = bisect.bisect_left(instrument.buckets, value)
            if index < len(series.buckets):
                series.buckets[index] += 1

    def gauge(self, name: str, help_text: str, read: Gauge, label: str = "") -> None:
        """A gauge read at scrape time; with `label`, `read()` maps label values to numbers."""
        self._gauges[name] = (help_text, label, read)

    def render(self) -> str:
        """The whole registry in text format 0.0.4."""
        lines: list[str] = []
        for name, instrument in INSTRUMENTS.items():
            lines += _render_instrument(instrument, self._series[name])
        for name, (help_text, label, read) in sorted(self._gauges.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            try:
                values = read()
            except Exception:  # a gauge's owner may be closing; the scrape goes on
                continue
            if not isinstance(values, dict):
                lines.append(f"{name} {_number(values)}")
                continue
            for value, number in sorted(values.items()):
                lines.append(f'{name}{{{label}="{_escape(value)}"}} {_number(number)}')
        return "\n".join(lines) + "\n"


def _render_instrument(instrument: Instrument, table: dict[tuple[str, ...], _Series]) -> list[str]:
    prom = instrument.prom_name
    keys = [k.replace(".", "_") for k in instrument.labels]
    lines = [f"# HELP {prom} {instrument.help}", f"# TYPE {prom} {instrument.kind}"]
    for labels, series in sorted(table.items()):
        pairs = [f'{k}="{_escape(v)}"' for k, v in zip(keys, labels, strict=True)]
        if instrument.kind == "counter":
            lines.append(f"{prom}{{{','.join(pairs)}}} {_number(series.total)}")
            continue
        for bound, hits in zip(
            instrument.buckets, itertools.accumulate(series.buckets), strict=True
        ):
            bucket = ",".join([*pairs, f'le="{_number(bound)}"'])
            lines.append(f"{prom}_bucket{{{bucket}}} {hits}")
        everything = ",".join([*pairs, 'le="+Inf"'])
        lines.append(f"{prom}_bucket{{{everything}}} {_number(series.count)}")
        lines.append(f"{prom}_sum{{{','.join(pairs)}}} {_number(series.total)}")
        lines.append(f"{prom}_count{{{','.join(pairs)}}} {_number(series.count)}")
    return lines


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))
