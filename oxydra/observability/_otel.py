"""The OpenTelemetry side, imported only when `[observability] enabled` (the `otel` extra).

Theory of operation:

1. Nothing of the SDK runs on a turn's path. The observer gives every span its W3C ids
   itself; when a trace's root ends, its finished spans are handed to `submit` (a deque
   append). One export thread replays them into SDK spans — same ids (through `_GivenIds`),
   names, kinds, start/end times, attributes, events, status — and exports the batch.
2. The queue is bounded by `max_queue_spans`: a trace that does not fit is dropped whole
   and its spans counted in `dropped`; so are the spans of an export that fails (collector
   down, slow past `export_timeout_secs`, answering an error). A turn never waits on either.
3. Sampling is decided per trace on the thread: a remote parent's sampled flag is followed,
   otherwise the trace id's low 64 bits against `sample_ratio` (TraceIdRatioBased's rule).
4. Metrics mirror the Prometheus registry's measurements onto OTel instruments of the same
   names and buckets; measurements are queued and applied on the export thread too, and a
   periodic reader exports them.
5. Header values are read from the environment variables the config names, never from the
   config file; a missing variable is a `ConfigError` naming the key.
"""

from __future__ import annotations

import collections
import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from oxydra.config.schema import ObservabilityConfig
from oxydra.core.errors import ConfigError
from oxydra.core.log import get_logger
from oxydra.observability._metrics import INSTRUMENTS

_log = get_logger(__name__)
_KINDS = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT, "server": SpanKind.SERVER}
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
Describe = Callable[[Any], tuple[str, str, dict[str, Any]]]
"""A finished span -> (exported name, kind, attributes); the observer's mapping."""


class _GivenIds(IdGenerator):
    """Hands the SDK the ids the observer already chose (used on the export thread only)."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_span_id(self) -> int:
        return self.span_id

    def generate_trace_id(self) -> int:
        return self.trace_id


class _Collect(SpanProcessor):
    """Keeps every ended span for the export thread to send (no thread of its own)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


class OtelBridge:
    """Export thread, tracer and meter for one process (see the module docstring)."""

    def __init__(
        self,
        config: ObservabilityConfig,
        environ: Mapping[str, str],
        *,
        span_exporter: SpanExporter | None = None,
        metric_exporter: MetricExporter | None = None,
        delay: float = 1.0,
    ) -> None:
        headers = resolve_headers(config.headers, environ)
        resource = Resource.create({"service.name": config.service_name})
        self.exporter = span_exporter or _span_exporter(config, headers)
        self.max_queue = config.max_queue_spans
        self.ratio = config.sample_ratio
        self.delay = delay
        self.batch = 512
        self.dropped = 0
        self.exported = 0
        self._failing = False
        # The exporters log every failed attempt; we count drops and say it once instead.
        logging.getLogger("opentelemetry.exporter").setLevel(logging.ERROR)
        self._ids = _GivenIds()
        self._collect = _Collect()
        self.provider = TracerProvider(resource=resource, sampler=ALWAYS_ON, id_generator=self._ids)
        self.provider.add_span_processor(self._collect)
        self.tracer = self.provider.get_tracer("oxydra")
        reader = PeriodicExportingMetricReader(
            metric_exporter or _metric_exporter(config, headers),
            export_interval_millis=config.metrics_interval_secs * 1000,
            export_timeout_millis=config.export_timeout_secs * 1000,
        )
        self.meters = MeterProvider(resource=resource, metric_readers=[reader])
        self._instruments = _instruments(self.meters)
        self._traces: collections.deque[tuple[list[Any], Describe]] = collections.deque()
        self._queued = 0
        self._count = threading.Lock()  # `_queued` is changed by both threads
        self._measures: collections.deque[tuple[str, float, tuple[str, ...]]] = collections.deque()
        self._wake = threading.Condition()
        self._flushes: list[threading.Event] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="oxydra-otel-export", daemon=True)
        self._thread.start()

    # ---- the turn's side: appends only ----------------------------------------------

    def submit(self, spans: list[Any], describe: Describe) -> None:
        """Queue a finished trace (rule 2); drop and count it when the queue is full."""
        with self._count:
            if self._queued + len(spans) > self.max_queue:
                self.dropped += len(spans)
                return
            self._queued += len(spans)
        self._traces.append((spans, describe))
        if self._queued >= self.batch:
            with self._wake:
                self._wake.notify()

    def record(self, name: str, value: float, labels: tuple[str, ...]) -> None:
        """Queue one measurement for its OTel instrument (MetricSink)."""
        self._measures.append((name, value, labels))

    # ---- the export thread ------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                if not (self._flushes or self._stopping or self._queued >= self.batch):
                    self._wake.wait(self.delay)
                flushes, self._flushes = self._flushes, []
                stopping = self._stopping
            self._apply_measures()
            self._drain()
            if flushes:
                self.meters.force_flush()
            for done in flushes:
                done.set()
            if stopping:
                return

    def _apply_measures(self) -> None:
        for _ in range(len(self._measures)):
            name, value, labels = self._measures.popleft()
            instrument, keys = self._instruments[name]
            attrs = {k: v for k, v in zip(keys, labels, strict=True) if v}
            if INSTRUMENTS[name].kind == "counter":
                instrument.add(value, attrs)
            else:
                instrument.record(value, attrs)

    def _drain(self) -> None:
        while self._traces:
            spans, describe = self._traces.popleft()
            with self._count:
                self._queued -= len(spans)
            try:
                self._replay(spans, describe)
            except Exception:  # a bad span must not stop the thread
                self.dropped += len(spans)
            if len(self._collect.spans) >= self.batch or not self._traces:
                self._export()

    def _replay(self, spans: list[Any], describe: Describe) -> None:
        roots = [s for s in spans if s.parent_id is None or s.remote_parent]
        remote = next((s for s in roots if s.remote_parent), None)
        if not self._sampled(spans[0].trace_id, remote):
            return
        for pending in sorted(spans, key=lambda s: (s.start_ns, s.depth)):
            name, kind, attrs = describe(pending)
            context = None
            if pending.parent_id is not None:
                parent = SpanContext(
                    pending.trace_id,
                    pending.parent_id,
                    is_remote=pending.remote_parent,
                    trace_flags=_SAMPLED,
                )
                context = trace.set_span_in_context(NonRecordingSpan(parent))
            self._ids.trace_id, self._ids.span_id = pending.trace_id, pending.span_id
            span = self.tracer.start_span(
                name,
                context=context,
                kind=_KINDS[kind],
                attributes=attrs,
                start_time=pending.start_ns,
            )
            for event in pending.events:
                span.add_event(event.name, attributes=event.attrs, timestamp=event.at_ns)
            if pending.error is not None:
                span.set_status(Status(StatusCode.ERROR, pending.error))
            span.end(end_time=pending.end_ns)

    def _sampled(self, trace_id: int, remote: Any) -> bool:
        if remote is not None:
            return bool(remote.remote_flags & 0x01)
        return (trace_id & 0xFFFFFFFFFFFFFFFF) < round(self.ratio * (1 << 64))

    def _export(self) -> None:
        chunk, self._collect.spans = self._collect.spans, []
        if not chunk:
            return
        try:
            ok = self.exporter.export(chunk) == SpanExportResult.SUCCESS
        except Exception:  # an exporter bug must not kill the thread
            ok = False
        if ok:
            self.exported += len(chunk)
        else:
            self.dropped += len(chunk)
        if ok == self._failing:  # say so once when export starts failing, once when it recovers
            self._failing = not ok
            _log.warning(
                "OTLP export %s (dropped so far: %d, see oxydra_telemetry_dropped)",
                "failing, spans are dropped" if not ok else "recovered",
                self.dropped,
            )

    # ---- lifecycle ----------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Export queued spans and current metrics now; False if that took too long."""
        done = threading.Event()
        with self._wake:
            self._flushes.append(done)
            self._wake.notify()
        return done.wait(timeout)

    def shutdown(self) -> None:
        """Export what is queued, stop the thread, shut the exporters down."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=30)
        self.exporter.shutdown()
        self.meters.shutdown()


def _instruments(meters: MeterProvider) -> dict[str, tuple[Any, tuple[str, ...]]]:
    meter = meters.get_meter("oxydra")
    made: dict[str, tuple[Any, tuple[str, ...]]] = {}
    for name, inst in INSTRUMENTS.items():
        instrument: Any
        if inst.kind == "counter":
            instrument = meter.create_counter(name, unit=inst.unit, description=inst.help)
        else:
            instrument = meter.create_histogram(
                name,
                unit=inst.unit,
                description=inst.help,
                explicit_bucket_boundaries_advisory=list(inst.buckets),
            )
        made[name] = (instrument, inst.labels)
    return made


def resolve_headers(headers: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Header values from the environment variables the config names (rule 5)."""
    resolved: dict[str, str] = {}
    for header, variable in headers.items():
        value = environ.get(variable)
        if not value:
            raise ConfigError(
                f"observability.headers.{header}: the environment variable {variable} is not set",
                key=f"observability.headers.{header}",
            )
        resolved[header] = value
    return resolved


def _base(config: ObservabilityConfig) -> str:
    endpoint = config.otlp_endpoint.rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigError(
            f"observability.otlp_endpoint: {endpoint!r} is not an http(s) URL",
            key="observability.otlp_endpoint",
        )
    return endpoint


def _span_exporter(config: ObservabilityConfig, headers: dict[str, str]) -> SpanExporter:
    exporter: SpanExporter = _exporter(config, headers, "trace", "OTLPSpanExporter")
    return exporter


def _metric_exporter(config: ObservabilityConfig, headers: dict[str, str]) -> MetricExporter:
    exporter: MetricExporter = _exporter(config, headers, "metric", "OTLPMetricExporter")
    return exporter


def _exporter(config: ObservabilityConfig, headers: dict[str, str], signal: str, name: str) -> Any:
    """One OTLP exporter: gRPC takes the bare endpoint, HTTP a per-signal path."""
    if config.protocol == "grpc":
        return getattr(_grpc(f"{signal}_exporter"), name)(
            endpoint=_base(config),
            headers=tuple(headers.items()),
            timeout=config.export_timeout_secs,
        )
    module = importlib.import_module(f"opentelemetry.exporter.otlp.proto.http.{signal}_exporter")
    path = "traces" if signal == "trace" else "metrics"
    return getattr(module, name)(
        endpoint=f"{_base(config)}/v1/{path}", headers=headers, timeout=config.export_timeout_secs
    )


def _grpc(module: str) -> Any:
    try:
        return importlib.import_module(f"opentelemetry.exporter.otlp.proto.grpc.{module}")
    except ImportError as exc:
        raise ConfigError(
            "observability.protocol = 'grpc' needs opentelemetry-exporter-otlp-proto-grpc "
            "(pip install 'oxydra[otel-grpc]'); 'http/protobuf' works with the bundled extra",
            key="observability.protocol",
        ) from exc
