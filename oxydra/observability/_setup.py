"""Wire observability for one process: store, metrics, optional OTel export, the span hook.

The composition root calls `start_observability` once; it installs the `core/log` span hook
and returns an `Observability` to register gauges on, serve `/metrics` from and close. The
OpenTelemetry SDK is imported here, and only when `[observability] enabled` is true.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from oxydra.config.schema import ObservabilityConfig
from oxydra.core.errors import ConfigError
from oxydra.core.log import get_logger, set_span_hook
from oxydra.observability._metrics import Gauge, MetricSink, PromRegistry
from oxydra.observability._observer import Observer
from oxydra.observability._prom_http import MetricsServer, is_loopback
from oxydra.observability._store import StoreWriter, db_path

_log = get_logger(__name__)


class Observability:
    """What `start_observability` built; `aclose` flushes and uninstalls the hook."""

    def __init__(
        self,
        config: ObservabilityConfig,
        observer: Observer,
        registry: PromRegistry,
        store: StoreWriter | None,
        bridge: Any,
        environ: Mapping[str, str],
    ) -> None:
        self.config = config
        self.observer = observer
        self.registry = registry
        self.store = store
        self.bridge = bridge
        self.environ = environ
        self.server: MetricsServer | None = None
        self.metrics_address: tuple[str, int] | None = None
        registry.gauge(
            "oxydra_telemetry_dropped", "Spans or ledger rows dropped", self._dropped, "what"
        )

    def gauge(self, name: str, help_text: str, read: Gauge, label: str = "") -> None:
        """Register a gauge read at scrape time (active sessions, queue depth)."""
        self.registry.gauge(name, help_text, read, label)

    async def serve_metrics(self) -> tuple[str, int] | None:
        """Start the Prometheus endpoint at `metrics_bind`, unless that is empty."""
        bind = self.config.metrics_bind
        if not bind:
            return None
        host = bind.rpartition(":")[0].strip("[]")
        token = None if is_loopback(host) else self.environ.get(self.config.metrics_token_env)
        self.server = MetricsServer(self.registry.render, token=token)
        self.metrics_address = await self.server.start(bind)
        return self.metrics_address

    def flush(self, timeout: float = 10.0) -> None:
        """Write the ledger and export what is queued (tests, shutdown)."""
        if self.store is not None:
            self.store.flush(timeout)
        if self.bridge is not None:
            self.bridge.flush(timeout)

    async def aclose(self) -> None:
        """Stop serving, flush, uninstall the hook."""
        set_span_hook(None)
        if self.server is not None:
            await self.server.close()
        if self.bridge is not None:
            self.bridge.shutdown()
        if self.store is not None:
            self.store.close()

    def _dropped(self) -> dict[str, float]:
        spans = self.observer.dropped_spans + (self.bridge.dropped if self.bridge else 0)
        rows = self.store.dropped if self.store else 0
        return {"spans": float(spans), "store": float(rows)}


def start_observability(
    config: ObservabilityConfig,
    *,
    workspace: Path | None,
    environ: Mapping[str, str],
    scrub: Callable[[str], str] | None = None,
    bridge: Any = None,
) -> Observability:
    """Build and install the span hook for this process.

    Args:
        config: `[observability]`.
        workspace: where the ledger and span store live; None keeps nothing on disk.
        environ: for header and token variables.
        scrub: secret scrubber for captured content (the tool output scrubber).
        bridge: an `OtelBridge` built by the caller (tests); by default one is built when
            `enabled`.

    Raises:
        ConfigError: export enabled but the `otel` extra is missing, or a bad setting.
    """
    if bridge is None and config.enabled:
        bridge = _bridge(config, environ)
    registry = PromRegistry()
    store = (
        StoreWriter(db_path(workspace), keep_turns=config.local_turns)
        if workspace is not None
        else None
    )
    sinks: list[MetricSink] = [registry] if bridge is None else [registry, bridge]
    observer = Observer(
        config, sinks=sinks, store=store, bridge=bridge, scrub=scrub or (lambda text: text)
    )
    set_span_hook(observer)
    return Observability(config, observer, registry, store, bridge, environ)


def _bridge(config: ObservabilityConfig, environ: Mapping[str, str]) -> Any:
    try:
        from oxydra.observability._otel import OtelBridge
    except ImportError as exc:
        raise ConfigError(
            "observability.enabled = true needs the OpenTelemetry SDK "
            f"(pip install 'oxydra[otel]'; missing: {exc.name})",
            key="observability.enabled",
        ) from exc
    return OtelBridge(config, environ)
