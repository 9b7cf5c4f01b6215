"""`protocol = "grpc"`: the same spans through the gRPC exporter into a loopback gRPC server."""

from __future__ import annotations

from concurrent import futures
from typing import Any

import pytest

from oxydra.config.schema import ObservabilityConfig
from oxydra.core.log import set_span_hook, span
from oxydra.observability import start_observability

grpc = pytest.importorskip("grpc", reason="the otel-grpc extra is not installed")
pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc")


def test_spans_and_headers_arrive_over_grpc() -> None:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    received: list[tuple[str, str]] = []
    metadata: list[dict[str, str]] = []

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
        def Export(self, request: Any, context: Any) -> Any:
            metadata.append(dict(context.invocation_metadata()))
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    received.extend((s.name, s.parent_span_id.hex()) for s in scope.spans)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    config = ObservabilityConfig(
        enabled=True,
        protocol="grpc",
        otlp_endpoint=f"http://127.0.0.1:{port}",
        headers={"x-tenant": "TENANT"},
        export_timeout_secs=5.0,
    )
    obs = start_observability(config, workspace=None, environ={"TENANT": "acme"})
    try:
        with span("turn", turn="t1", agent="default"), span("tool.call", tool="file_read"):
            pass
        assert obs.bridge.flush(30)
    finally:
        set_span_hook(None)
        obs.bridge.shutdown()
        server.stop(None)
    names = dict(received)
    assert set(names) == {"invoke_agent default", "execute_tool file_read"}
    assert names["invoke_agent default"] == ""
    assert metadata[0]["x-tenant"] == "acme"
