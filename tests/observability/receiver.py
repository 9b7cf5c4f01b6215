"""A real OTLP/HTTP receiver on loopback, decoding with `opentelemetry-proto`.

It plays the collector: `/v1/traces` and `/v1/metrics` bodies are parsed as the protobuf
`Export*ServiceRequest`s and kept; `delay` makes it slow and `status` makes it fail, for the
bad-collector tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


@dataclass
class Span:
    """A received span, flattened for assertions."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attrs: dict[str, Any]
    events: list[str]
    status: int
    service: str


@dataclass
class Receiver:
    """Collects what exporters send (see the module docstring)."""

    delay: float = 0.0
    status: int = 200
    spans: list[Span] = field(default_factory=list)
    metrics: dict[str, list[Any]] = field(default_factory=dict)
    headers: list[dict[str, str]] = field(default_factory=list)
    requests: int = 0
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests += 1
                receiver.headers.append(dict(self.headers))
                if receiver.delay:
                    receiver._stop.wait(receiver.delay)
                if receiver.status == 200:
                    receiver.take(self.path, body)
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def take(self, path: str, body: bytes) -> None:
        if path == "/v1/traces":
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource in request.resource_spans:
                service = _attrs(resource.resource.attributes).get("service.name", "")
                for scope in resource.scope_spans:
                    self.spans += [_span(s, service) for s in scope.spans]
        elif path == "/v1/metrics":
            metrics = ExportMetricsServiceRequest()
            metrics.ParseFromString(body)
            for resource in metrics.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        self.metrics.setdefault(metric.name, []).append(metric)

    def named(self, prefix: str) -> list[Span]:
        return [s for s in self.spans if s.name.startswith(prefix)]


def _span(span: Any, service: str) -> Span:
    return Span(
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=span.parent_span_id.hex(),
        kind=span.kind,
        attrs=_attrs(span.attributes),
        events=[e.name for e in span.events],
        status=span.status.code,
        service=service,
    )


def _attrs(items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        value = item.value
        which = value.WhichOneof("value")
        if which == "array_value":
            out[item.key] = [getattr(v, v.WhichOneof("value")) for v in value.array_value.values]
        else:
            out[item.key] = getattr(value, which) if which else None
    return out
