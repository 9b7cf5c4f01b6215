"""Observability: OpenTelemetry traces and metrics, the usage ledger, the local span store.

Call sites never import this package: they open `core/log.span`s. The composition root
calls `start_observability`, which installs the `Observer` as the span hook; the OTel SDK
is imported only when `[observability] enabled`. `oxydra usage` and `oxydra trace` read the
store (`commands.py`). docs/observability.md describes spans, metrics and settings.
"""

from oxydra.observability._metrics import INSTRUMENTS, PromRegistry
from oxydra.observability._observer import Observer, parse_traceparent
from oxydra.observability._records import SpanEvent, SpanRecord, TurnUsage
from oxydra.observability._setup import Observability, start_observability
from oxydra.observability._store import db_path

__all__ = [
    "INSTRUMENTS",
    "Observability",
    "Observer",
    "PromRegistry",
    "SpanEvent",
    "SpanRecord",
    "TurnUsage",
    "db_path",
    "parse_traceparent",
    "start_observability",
]
