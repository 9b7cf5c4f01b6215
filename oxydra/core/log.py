"""Structured logging with spans, on stdlib `logging`.

Call sites use `get_logger(__name__)` and `with span("provider.call", model=m): ...`.
Span attributes travel in a context variable, so every record inside a span carries them.
Logs go to stderr, one `key=value` line per record (or JSON with OXYDRA_LOG_FORMAT=json).

Tracing without importing a tracer: the composition root may install one `SpanHook`
(`set_span_hook`). Every span then also opens a handle on the hook, parented to the enclosing
span's handle (or to a W3C `traceparent` from another process), receives `span_event`s and
is ended with the span's result dict. Without a hook a span costs what it always did, and
nothing of a tracing SDK is imported (`oxydra.observability` is the hook; docs/observability.md).
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
from typing import Any, Protocol


class SpanHandle(Protocol):
    """One open span on the installed hook."""

    def event(self, name: str, attrs: dict[str, Any]) -> None:
        """Record a point in time inside the span (a retry, a fallback)."""

    def end(self, result: dict[str, Any], error: str | None) -> None:
        """Close the span with the caller's result attributes and the error type, if any."""

    def traceparent(self) -> str | None:
        """The W3C `traceparent` naming this span, for a peer in another process."""


class SpanHook(Protocol):
    """Receives every span (`set_span_hook`); must never block or raise."""

    def start(
        self, name: str, attrs: dict[str, Any], parent: SpanHandle | None, remote: str | None
    ) -> SpanHandle:
        """Open a span named `name` under `parent`, or under the remote `traceparent`."""


_hook: SpanHook | None = None
_handle: contextvars.ContextVar[SpanHandle | None] = contextvars.ContextVar(
    "oxydra_span_handle", default=None
)
_span_attrs: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "oxydra_span_attrs", default=None
)
_span_path: contextvars.ContextVar[str] = contextvars.ContextVar("oxydra_span_path", default="")


def get_logger(name: str) -> logging.Logger:
    """The logger for a module; records pick up the attributes of the enclosing spans."""
    return logging.getLogger(name)


def set_span_hook(hook: SpanHook | None) -> None:
    """Install (or with None remove) the process's span hook; the composition root's job."""
    global _hook
    _hook = hook


def span_event(name: str, **attrs: Any) -> None:
    """Record an event on the innermost open span, if a hook is installed."""
    handle = _handle.get()
    if handle is not None:
        handle.event(name, attrs)


def current_traceparent() -> str | None:
    """The innermost open span as a W3C `traceparent`, to hand to another process."""
    handle = _handle.get()
    return handle.traceparent() if handle is not None else None


@contextlib.contextmanager
def span(name: str, *, remote_parent: str | None = None, **attrs: Any) -> Iterator[dict[str, Any]]:
    """Open a named span; records logged inside carry `attrs` and the span path.

    Yields a dict that the caller may add result attributes to; they are logged with the
    span's end record at DEBUG level together with its duration, and handed to the hook.
    `remote_parent` (a W3C `traceparent` from another process) parents the span when no
    span of this process encloses it.
    """
    result: dict[str, Any] = {}
    handle = _hook.start(name, attrs, _handle.get(), remote_parent) if _hook else None
    token_handle = _handle.set(handle) if handle is not None else None
    parent = _span_path.get()
    token_attrs = _span_attrs.set({**(_span_attrs.get() or {}), **attrs})
    token_path = _span_path.set(f"{parent}/{name}" if parent else name)
    start = time.perf_counter()
    error: str | None = None
    try:
        yield result
    except BaseException as exc:
        error = type(exc).__name__
        result.setdefault("error", error)
        raise
    finally:
        logger = logging.getLogger("oxydra.span")
        if logger.isEnabledFor(logging.DEBUG):
            elapsed_ms = round((time.perf_counter() - start) * 1000, 3)
            shown = {k: v for k, v in result.items() if not k.startswith("_")}  # `_`: content
            logger.debug("span end", extra={"oxy": {**shown, "elapsed_ms": elapsed_ms}})
        _span_path.reset(token_path)
        _span_attrs.reset(token_attrs)
        if handle is not None:
            assert token_handle is not None
            _handle.reset(token_handle)
            handle.end(result, error)


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
