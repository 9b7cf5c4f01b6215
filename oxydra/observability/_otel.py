"""The OpenTelemetry side, imported only when `[observability] enabled` (the `otel` extra).

Theory of operation:

1. Spans are created through the SDK's tracer, so their ids are the ones the backend shows
   and `oxydra trace` prints; parents come from the enclosing span or a remote
   `traceparent`. Sampling is `ParentBased(TraceIdRatioBased(sample_ratio))`.
2. Finished, sampled spans go to `BoundedSpanProcessor`: a deque of at most
   `max_queue_spans` and one exporter thread. `on_end` only appends (or counts a drop when
   full), so a turn never waits on a slow or dead collector; an export that fails counts its
   spans as dropped too. `dropped` is exposed as a metric.
3. Metrics mirror the Prometheus registry's measurements onto OTel instruments with the
   same names and buckets, exported by a periodic reader.
4. Header values are read from the environment variables the config names, never from the
   config file; a missing variable is a `ConfigError` naming the key.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
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
from oxydra.observability._metrics import INSTRUMENTS

_KINDS = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT, "server": SpanKind.SERVER}
Remote = tuple[int, int, int]
"""(trace id, span id, flags) of a parent in another process."""


class BoundedSpanProcessor(SpanProcessor):
    """Queue finished spans without blocking; export them on one thread (rule 2)."""

    def __init__(
        self, exporter: SpanExporter, *, max_queue: int, batch: int = 256, delay: float = 1.0
    ) -> None:
        self.exporter = exporter
        self.max_queue = max_queue
        self.batch = batch
        self.delay = delay
        self.dropped = 0
        self.exported = 0
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._wake = threading.Condition()
        self._flushes: list[threading.Event] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="oxydra-otel-export", daemon=True)
        self._thread.start()

    def on_end(self, span: ReadableSpan) -> None:
        """Append a finished span, or count it dropped when the queue is full."""
        if span.context is None or not span.context.trace_flags.sampled:
            return
        with self._wake:
            if len(self._queue) >= self.max_queue:
                self.dropped += 1
                return
            self._queue.append(span)
            if len(self._queue) >= self.batch:
                self._wake.notify()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything queued so far; False if that took longer than the timeout."""
        done = threading.Event()
        with self._wake:
            self._flushes.append(done)
            self._wake.notify()
        return done.wait(timeout_millis / 1000)

    def shutdown(self) -> None:
        """Export what is queued, stop the thread, shut the exporter down."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=30)
        self.exporter.shutdown()

    def _run(self) -> None:
        while True:
            with self._wake:
                if not (self._queue or self._flushes or self._stopping):
                    self._wake.wait(self.delay)
                flushes, self._flushes = self._flushes, []
                stopping = self._stopping
            self._drain(everything=bool(flushes) or stopping)
            for done in flushes:
                done.set()
            if stopping:
                return

    def _drain(self, *, everything: bool) -> None:
        while True:
            with self._wake:
                if not self._queue:
                    return
                chunk = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
            try:
                ok = self.exporter.export(chunk) == SpanExportResult.SUCCESS
            except Exception:  # an exporter bug must not kill the thread
                ok = False
            if ok:
                self.exported += len(chunk)
            else:
                self.dropped += len(chunk)
            if not everything:
                return


class OtelBridge:
    """Tracer, span processor and meter for one process (see the module docstring)."""

    def __init__(
        self,
        config: ObservabilityConfig,
        environ: Mapping[str, str],
        *,
        span_exporter: SpanExporter | None = None,
        metric_exporter: MetricExporter | None = None,
    ) -> None:
        headers = resolve_headers(config.headers, environ)
        resource = Resource.create({"service.name": config.service_name})
        span_exporter = span_exporter or _span_exporter(config, headers)
        self.processor = BoundedSpanProcessor(span_exporter, max_queue=config.max_queue_spans)
        self.provider = TracerProvider(
            resource=resource, sampler=ParentBased(TraceIdRatioBased(config.sample_ratio))
        )
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("oxydra")
        reader = PeriodicExportingMetricReader(
            metric_exporter or _metric_exporter(config, headers),
            export_interval_millis=config.metrics_interval_secs * 1000,
            export_timeout_millis=config.export_timeout_secs * 1000,
        )
        self.meters = MeterProvider(resource=resource, metric_readers=[reader])
        meter = self.meters.get_meter("oxydra")
        self._instruments: dict[str, Any] = {}
        self._labels = {n: i.labels for n, i in INSTRUMENTS.items()}
        for name, inst in INSTRUMENTS.items():
            if inst.kind == "counter":
                made = meter.create_counter(name, unit=inst.unit, description=inst.help)
            else:
                made = meter.create_histogram(
                    name,
                    unit=inst.unit,
                    description=inst.help,
                    explicit_bucket_boundaries_advisory=list(inst.buckets),
                )
            self._instruments[name] = made

    def start(
        self,
        name: str,
        kind: str,
        parent: Any | None,
        remote: Remote | None,
        start_ns: int,
    ) -> tuple[Any, int, int]:
        """Open an SDK span; returns it with its trace and span ids."""
        context = None
        if parent is not None:
            context = trace.set_span_in_context(parent)
        elif remote is not None:
            trace_id, span_id, flags = remote
            remote_ctx = SpanContext(
                trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags)
            )
            context = trace.set_span_in_context(NonRecordingSpan(remote_ctx))
        span = self.tracer.start_span(name, context=context, kind=_KINDS[kind], start_time=start_ns)
        ids = span.get_span_context()
        return span, ids.trace_id, ids.span_id

    @staticmethod
    def event(span: Any, name: str, attrs: dict[str, Any], at_ns: int) -> None:
        """Add an event to an open span."""
        span.add_event(name, attributes=attrs, timestamp=at_ns)

    @staticmethod
    def end(span: Any, attrs: dict[str, Any], error: str | None, end_ns: int) -> None:
        """Set the final attributes and status, then end the span."""
        span.set_attributes(attrs)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=end_ns)

    def record(self, name: str, value: float, labels: tuple[str, ...]) -> None:
        """Mirror one measurement onto its OTel instrument (MetricSink)."""
        attrs = {k: v for k, v in zip(self._labels[name], labels, strict=True) if v}
        instrument = self._instruments[name]
        if INSTRUMENTS[name].kind == "counter":
            instrument.add(value, attrs)
        else:
            instrument.record(value, attrs)

    @property
    def dropped(self) -> int:
        """Spans lost to a full queue or a failed export."""
        return self.processor.dropped

    def flush(self, timeout: float = 10.0) -> bool:
        """Export queued spans and current metrics now."""
        spans = self.processor.force_flush(int(timeout * 1000))
        metrics = self.meters.force_flush(int(timeout * 1000))
        return spans and metrics

    def shutdown(self) -> None:
        """Flush and stop both exporters."""
        self.provider.shutdown()
        self.meters.shutdown()


def resolve_headers(headers: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Header values from the environment variables the config names (rule 4)."""
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
    if config.protocol == "grpc":
        module = _grpc("trace_exporter")
        exporter: SpanExporter = module.OTLPSpanExporter(
            endpoint=_base(config),
            headers=tuple(headers.items()),
            timeout=config.export_timeout_secs,
        )
        return exporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(
        endpoint=f"{_base(config)}/v1/traces", headers=headers, timeout=config.export_timeout_secs
    )


def _metric_exporter(config: ObservabilityConfig, headers: dict[str, str]) -> MetricExporter:
    if config.protocol == "grpc":
        module = _grpc("metric_exporter")
        exporter: MetricExporter = module.OTLPMetricExporter(
            endpoint=_base(config),
            headers=tuple(headers.items()),
            timeout=config.export_timeout_secs,
        )
        return exporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(
        endpoint=f"{_base(config)}/v1/metrics", headers=headers, timeout=config.export_timeout_secs
    )


def _grpc(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(f"opentelemetry.exporter.otlp.proto.grpc.{module}")
    except ImportError as exc:
        raise ConfigError(
            "observability.protocol = 'grpc' needs opentelemetry-exporter-otlp-proto-grpc "
            "(pip install 'oxydra[otel-grpc]'); 'http/protobuf' works with the bundled extra",
            key="observability.protocol",
        ) from exc


def otel_ids(trace_id: int, span_id: int) -> tuple[str, str]:
    """Hex ids as W3C writes them."""
    return f"{trace_id:032x}", f"{span_id:016x}"
