"""A collector that is down, slow or misconfigured never holds a turn up.

The real OTLP/HTTP exporter against the loopback receiver: spans end on the test's thread
while the export thread is stuck, the queue stays bounded, and every lost span is counted.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import pytest

from oxydra.config.schema import ObservabilityConfig
from oxydra.core.errors import ConfigError
from oxydra.core.log import set_span_hook, span
from oxydra.observability import start_observability
from tests.observability.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    rx.start()
    yield rx
    rx.stop()


def _config(endpoint: str, **changes: object) -> ObservabilityConfig:
    base = {"enabled": True, "otlp_endpoint": endpoint, "export_timeout_secs": 1.0}
    return ObservabilityConfig(**{**base, **changes})  # type: ignore[arg-type]


def _spans(count: int) -> None:
    for n in range(count):
        with span("turn", turn=f"t{n}", agent="default"), span("chat", model="m") as seen:
            seen["input_tokens"] = 3


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_slow_collector_fills_a_bounded_queue_and_drops_are_counted(
    receiver: Receiver,
) -> None:
    receiver.delay = 2.0
    obs = start_observability(
        _config(f"http://127.0.0.1:{receiver.port}", max_queue_spans=20),
        workspace=None,
        environ={},
    )
    try:
        bridge = obs.bridge
        bridge.batch = 4  # the export thread takes the first traces and blocks on the receiver
        _spans(100)  # 100 traces of 2 spans end while the exporter is stuck: none of them waits
        assert bridge._queued <= 20
        assert bridge.dropped >= 200 - 20 - 4 * 2
        assert 'oxydra_telemetry_dropped{what="spans"}' in obs.registry.render()
    finally:
        receiver.delay = 0.0
        set_span_hook(None)
        bridge.shutdown()
    assert bridge.exported + bridge.dropped == 200


def test_a_collector_that_is_down_counts_every_span_as_dropped() -> None:
    obs = start_observability(
        _config(f"http://127.0.0.1:{_closed_port()}"), workspace=None, environ={}
    )
    try:
        _spans(3)
        assert obs.bridge.flush(30)
        assert obs.bridge.dropped == 6 and obs.bridge.exported == 0
    finally:
        set_span_hook(None)
        obs.bridge.shutdown()


def test_a_collector_answering_500_counts_the_batch_as_dropped(receiver: Receiver) -> None:
    receiver.status = 500
    obs = start_observability(
        _config(f"http://127.0.0.1:{receiver.port}"), workspace=None, environ={}
    )
    try:
        _spans(2)
        assert obs.bridge.flush(30)
        assert obs.bridge.dropped == 4 and receiver.requests >= 1 and not receiver.spans
    finally:
        set_span_hook(None)
        obs.bridge.shutdown()


class TestBadSettings:
    def test_an_endpoint_that_is_not_http_is_refused_naming_the_key(self) -> None:
        with pytest.raises(ConfigError, match=r"observability\.otlp_endpoint"):
            start_observability(_config("localhost:4318"), workspace=None, environ={})

    def test_a_header_whose_variable_is_unset_is_refused_naming_it(self) -> None:
        config = _config("http://127.0.0.1:9", headers={"authorization": "NO_SUCH_VAR"})
        with pytest.raises(
            ConfigError, match=r"observability\.headers\.authorization.*NO_SUCH_VAR"
        ):
            start_observability(config, workspace=None, environ={})

    def test_grpc_without_its_extra_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # as if the otel-grpc extra were not installed: the import fails
        monkeypatch.setitem(
            sys.modules, "opentelemetry.exporter.otlp.proto.grpc.trace_exporter", None
        )
        config = _config("http://127.0.0.1:9", protocol="grpc")
        with pytest.raises(ConfigError, match=r"oxydra\[otel-grpc\]"):
            start_observability(config, workspace=None, environ={})


def test_a_zero_sample_ratio_exports_no_span_but_a_sampled_caller_is_followed(
    receiver: Receiver,
) -> None:
    obs = start_observability(
        _config(f"http://127.0.0.1:{receiver.port}", sample_ratio=0.0),
        workspace=None,
        environ={},
    )
    try:
        _spans(2)
        caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        with span("turn", remote_parent=caller, turn="joined"):
            pass
        assert obs.bridge.flush(30)
    finally:
        set_span_hook(None)
        obs.bridge.shutdown()
    assert [s.name for s in receiver.spans] == ["invoke_agent unknown"]
    assert receiver.spans[0].parent_id == "00f067aa0ba902b7"
