"""Structured logging with spans, on stdlib `logging`.

Call sites use `get_logger(__name__)` and `with span("provider.call", model=m): ...`.
Span attributes travel in a context variable, so every record inside a span carries them;
an OpenTelemetry exporter can later replace `span` without touching any call site.
Logs go to stderr, one `key=value` line per record (or JSON with OXYDRA_LOG_FORMAT=json).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

_span_attrs: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "oxydra_span_attrs", default=None
)
_span_path: contextvars.ContextVar[str] = contextvars.ContextVar("oxydra_span_path", default="")


def get_logger(name: str) -> logging.Logger:
    """The logger for a module; records pick up the attributes of the enclosing spans."""
    return logging.getLogger(name)


@contextlib.contextmanager
def span(name: str, **attrs: Any) -> Iterator[dict[str, Any]]:
    """Open a named span; records logged inside carry `attrs` and the span path.

    Yields a dict that the caller may add result attributes to; they are logged with the
    span's end record at DEBUG level together with its duration.
    """
    parent = _span_path.get()
    path = f"{parent}/{name}" if parent else name
    merged = {**(_span_attrs.get() or {}), **attrs}
    token_attrs = _span_attrs.set(merged)
    token_path = _span_path.set(path)
    result: dict[str, Any] = {}
    start = time.perf_counter()
    try:
        yield result
    except BaseException as exc:
        result.setdefault("error", type(exc).__name__)
        raise
    finally:
        elapsed_ms = (time.perf_counter() - start) * 1000
        logger = logging.getLogger("oxydra.span")
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("span end", extra={"oxy": {**result, "elapsed_ms": round(elapsed_ms, 3)}})
        _span_path.reset(token_path)
        _span_attrs.reset(token_attrs)


class _ContextFilter(logging.Filter):
    """Copies the active span's path and attributes onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.span = _span_path.get()
        record.attrs = {**(_span_attrs.get() or {}), **getattr(record, "oxy", {})}
        return True


class KeyValueFormatter(logging.Formatter):
    """`ts level logger span message k=v ...`, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [f"{ts}Z", record.levelname.lower(), record.name]
        span_name = getattr(record, "span", "")
        if span_name:
            parts.append(f"span={span_name}")
        parts.append(record.getMessage())
        for key, value in getattr(record, "attrs", {}).items():
            parts.append(f"{key}={value}")
        if record.exc_info:
            parts.append(self.formatException(record.exc_info).replace("\n", " | "))
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span_name = getattr(record, "span", "")
        if span_name:
            doc["span"] = span_name
        doc.update(getattr(record, "attrs", {}))
        return json.dumps(doc, default=str)


def configure_logging(level: str | None = None, fmt: str | None = None) -> None:
    """Send Oxydra's records to stderr; level from OXYDRA_LOG (default `warning`)."""
    level_name = (level or os.environ.get("OXYDRA_LOG") or "warning").upper()
    handler = logging.StreamHandler(sys.stderr)
    use_json = (fmt or os.environ.get("OXYDRA_LOG_FORMAT", "")) == "json"
    handler.setFormatter(JsonFormatter() if use_json else KeyValueFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger("oxydra")
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level_name, logging.WARNING))
    root.propagate = False
