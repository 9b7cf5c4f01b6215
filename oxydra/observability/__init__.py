"""Observability: OpenTelemetry traces and metrics, the usage ledger, the local span store.

Call sites never import this package: they open `core/log.span`s. The composition root
calls `start_observability`, which installs the `Observer` as the span hook; the OTel SDK
is imported only when `[observability] enabled`. `oxydra usage` and `oxydra trace` read the
store (`commands.py`). docs/observability.md describes spans, metrics and settings.
"""

import typing as _typing

from oxydra._lazy import lazy_getattr as _lazy_getattr

if _typing.TYPE_CHECKING:
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

__getattr__ = _lazy_getattr(
    globals(),
    {
        "INSTRUMENTS": "oxydra.observability._metrics",
        "Observability": "oxydra.observability._setup",
        "Observer": "oxydra.observability._observer",
        "PromRegistry": "oxydra.observability._metrics",
        "SpanEvent": "oxydra.observability._records",
        "SpanRecord": "oxydra.observability._records",
        "TurnUsage": "oxydra.observability._records",
        "db_path": "oxydra.observability._store",
        "parse_traceparent": "oxydra.observability._observer",
        "start_observability": "oxydra.observability._setup",
    },
)
