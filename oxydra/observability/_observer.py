"""`Observer`: the `core/log` span hook that turns spans into traces, metrics and a ledger.

Theory of operation:

1. Every span opens a `_Handle` knowing its parent handle, its root (the outermost span of
   this process in the same trace) and its turn (the nearest enclosing `turn` span, itself
   included). Ids are chosen here (the OTel export replays spans with them later, off the
   turn's path); a remote W3C `traceparent` (gateway frame, bootstrap envelope) gives a root
   its trace, its parent and its sampling flag.
2. When a `chat` span ends, its usage and price are added to its turn's `TurnUsage` and its
   measurements go to the metric sinks. When a `turn` span ends, its `TurnUsage` becomes a
   ledger row (the schedule from an enclosing `schedule.run`); a sub-agent's turn is a row of
   its own, so no token is counted twice.
3. Every finished span is appended to its root's buffer (at most `MAX_TRACE_SPANS`); when the
   root ends, the buffer is stored under the ids of the turns inside it, for `oxydra trace`.
   Mapping a span to its stored form happens on the store's thread, off the turn's path.
4. Content (`_`-prefixed result keys) leaves the process only with `capture_content`, and
   then scrubbed of secrets like tool output; every value is clipped to `max_attribute_chars`.
5. Nothing here blocks: the store and the exporter each have a bounded queue and a thread,
   and appending to them wakes neither.
   An exception inside the observer is logged and swallowed; telemetry never fails a turn.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import Any

import msgspec

from oxydra.config.schema import ObservabilityConfig
from oxydra.core.log import SpanHandle, get_logger
from oxydra.observability import _semconv as sc
from oxydra.observability._metrics import MetricSink
from oxydra.observability._records import SpanEvent, SpanRecord, TurnUsage
from oxydra.observability._store import StoreWriter

_log = get_logger(__name__)
MAX_TRACE_SPANS = 2000
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_json = msgspec.json.Encoder()
_rng = random.Random()


def parse_traceparent(value: str | None) -> tuple[int, int, int] | None:
    """(trace id, span id, flags) of a valid W3C `traceparent`, else None (never raises)."""
    if not value or len(value) != 55:
        return None
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    trace_id, span_id = int(match[1], 16), int(match[2], 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, int(match[3], 16)


class _Pending:
    """A finished span waiting for the store's thread to map and write it (rule 3)."""

    __slots__ = (
        "attrs", "depth", "end_ns", "error", "events", "kind", "name", "parent_id",
        "remote_flags", "remote_parent", "result", "span_attrs", "span_id", "start_ns",
        "trace_id",
    )  # fmt: skip

    def __init__(
        self,
        handle: _Handle,
        result: dict[str, Any],
        attrs: dict[str, Any] | None,
        error: str | None,
        end_ns: int,
    ) -> None:
        self.name, self.kind, self.span_attrs = handle.name, handle.kind, handle.attrs
        self.trace_id, self.span_id, self.parent_id = (
            handle.trace_id, handle.span_id, handle.parent_id,
        )  # fmt: skip
        self.start_ns, self.end_ns, self.error = handle.wall, end_ns, error
        self.result, self.attrs, self.events = result, attrs, tuple(handle.events)
        self.depth, self.remote_flags = handle.depth, handle.remote_flags
        self.remote_parent = handle.remote_flags is not None


class _Handle:
    """One open span (rule 1)."""

    __slots__ = (
        "attrs", "buffer", "depth", "events", "kind", "name", "observer", "parent", "parent_id",
        "remote_flags", "root", "routed_model", "span_id", "start_ns", "trace_id", "turn",
        "usage", "wall",
    )  # fmt: skip

    def __init__(self, observer: Observer, name: str, attrs: dict[str, Any]) -> None:
        self.observer, self.name, self.attrs = observer, name, attrs
        self.start_ns, self.wall = time.perf_counter_ns(), time.time_ns()
        self.events: list[SpanEvent] = []
        self.parent: _Handle | None = None
        self.root: _Handle = self
        self.turn: _Handle | None = None
        self.buffer: list[_Pending] | None = None
        self.usage: TurnUsage | None = None
        self.depth = 0
        self.remote_flags: int | None = None
        self.kind = "internal"
        self.trace_id = self.span_id = 0
        self.parent_id: int | None = None
        self.routed_model: str | None = None

    def event(self, name: str, attrs: dict[str, Any]) -> None:
        at = self.wall + time.perf_counter_ns() - self.start_ns
        clipped = {k: sc.clip(v, self.observer.max_chars) for k, v in attrs.items()}
        self.events.append(SpanEvent(name=name, at_ns=at, attrs=clipped))
        if name == "fallback" and attrs.get("model"):
            self.routed_model = str(attrs["model"])  # the model that answered, if any

    def end(self, result: dict[str, Any], error: str | None) -> None:
        try:
            self.observer.finish(self, result, error)
        except Exception:  # rule 5
            _log.exception("observability: could not record span %s", self.name)

    def traceparent(self) -> str | None:
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-01"


class Observer:
    """The span hook (see the module docstring).

    Args:
        config: `[observability]`.
        sinks: metric sinks (the Prometheus registry, the OTel bridge).
        store: ledger and span-store writer, or None to keep nothing on disk.
        bridge: the OTel bridge when export is enabled.
        scrub: secret scrubber for captured content.
    """

    def __init__(
        self,
        config: ObservabilityConfig,
        *,
        sinks: list[MetricSink],
        store: StoreWriter | None = None,
        bridge: Any = None,
        scrub: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.config = config
        self.sinks = sinks
        self.store = store
        self.bridge = bridge
        self.scrub = scrub
        self.max_chars = config.max_attribute_chars
        self.dropped_spans = 0

    # ---- SpanHook ------------------------------------------------------------------

    def start(
        self, name: str, attrs: dict[str, Any], parent: SpanHandle | None, remote: str | None
    ) -> _Handle:
        """Open a handle under `parent` or the remote `traceparent` (rule 1)."""
        handle = _Handle(self, name, attrs)
        up = parent if isinstance(parent, _Handle) else None
        remote_ids = parse_traceparent(remote) if up is None else None
        handle.kind = sc.SPAN_KINDS.get(name, ("", "internal"))[1]
        if up is not None:
            handle.parent, handle.root, handle.turn = up, up.root, up.turn
            handle.depth = up.depth + 1
            handle.trace_id, handle.parent_id = up.trace_id, up.span_id
        elif remote_ids is not None:
            handle.trace_id, handle.parent_id, handle.remote_flags = remote_ids
        else:
            handle.trace_id = _id(128)
        handle.span_id = _id(64)
        if name == "turn":
            handle.turn = handle
            handle.usage = _new_usage(handle, up)
        if up is None:
            handle.buffer = []
        return handle

    # ---- end of a span -------------------------------------------------------------

    def finish(self, handle: _Handle, result: dict[str, Any], error: str | None) -> None:
        """Export, measure, account and store one finished span (rules 2 to 4)."""
        duration_ns = time.perf_counter_ns() - handle.start_ns
        end_ns = handle.wall + duration_ns
        if error is not None:
            result.setdefault("error", error)
        if handle.name == "chat":
            result.setdefault("response_model", handle.routed_model or handle.attrs.get("model"))
        elif handle.usage is not None:
            usage = handle.usage
            result["input_tokens"], result["output_tokens"] = (
                usage.input_tokens,
                usage.output_tokens,
            )
            result["cost_usd"], result["calls"] = usage.cost_usd, usage.calls
        if self.config.capture_content:
            result = {k: self._content(k, v) for k, v in result.items()}
        else:
            result = {k: v for k, v in result.items() if k[0] != "_"}  # hold no content
        self._measure(handle, result, duration_ns / 1e9, error)
        self._keep(handle, _Pending(handle, result, None, error, end_ns))

    def attributes(self, name: str, attrs: dict[str, Any], result: dict[str, Any]) -> Any:
        """A span's exported attributes under this observer's limits."""
        return sc.attributes(
            name, attrs, result, max_chars=self.max_chars, content=self.config.capture_content
        )

    def describe(self, pending: _Pending) -> tuple[str, str, dict[str, Any]]:
        """(exported name, kind, attributes) of a finished span, for the OTel replay."""
        attrs = pending.attrs
        if attrs is None:
            attrs = pending.attrs = self.attributes(
                pending.name, pending.span_attrs, pending.result
            )
        return sc.exported_name(pending.name, pending.span_attrs)[0], pending.kind, attrs

    def record_of(self, pending: _Pending) -> SpanRecord:
        """The stored form of a finished span; runs on the store's thread (rule 5)."""
        attrs = pending.attrs
        if attrs is None:
            attrs = self.attributes(pending.name, pending.span_attrs, pending.result)
        return SpanRecord(
            trace_id=f"{pending.trace_id:032x}",
            span_id=f"{pending.span_id:016x}",
            parent_id=f"{pending.parent_id:016x}" if pending.parent_id else None,
            name=sc.exported_name(pending.name, pending.span_attrs)[0],
            kind=pending.kind,
            start_ns=pending.start_ns,
            end_ns=pending.end_ns,
            error=pending.error,
            attrs=attrs,
            events=pending.events,
        )

    def _content(self, key: str, value: Any) -> Any:
        if not key.startswith("_") or value is None:
            return value
        text = value if isinstance(value, str) else _json.encode(value).decode()
        return self.scrub(text[: self.max_chars * 4])

    def _measure(
        self, handle: _Handle, result: dict[str, Any], seconds: float, error: str | None
    ) -> None:
        match handle.name:
            case "chat":
                self._chat(handle, result, seconds, error)
            case "tool.call":
                outcome = result.get("outcome") or ("error" if error else "ok")
                self._record("oxydra.tool.calls", 1, (str(handle.attrs.get("tool")), outcome))
            case "turn":
                self._turn(handle, result, seconds, error)
            case "channel.deliver" if error is not None or result.get("failed"):
                channel = str(handle.attrs.get("channel", ""))
                self._record("oxydra.channel.delivery_failures", 1, (channel,))
            case _:
                pass

    def _chat(
        self, handle: _Handle, result: dict[str, Any], seconds: float, error: str | None
    ) -> None:
        provider = sc.PROVIDER_NAMES.get(str(handle.attrs.get("provider")), "")
        provider = provider or str(handle.attrs.get("provider", ""))
        model = str(handle.attrs.get("model", ""))
        for kind, key in (("input", "input_tokens"), ("output", "output_tokens")):
            tokens = result.get(key)
            if isinstance(tokens, int):
                self._record("gen_ai.client.token.usage", tokens, ("chat", provider, model, kind))
        labels = ("chat", provider, model, error or "")
        self._record("gen_ai.client.operation.duration", seconds, labels)
        ttft = result.get("ttft_s")
        if isinstance(ttft, int | float):
            self._record("oxydra.time_to_first_token", float(ttft), (provider, model))
        turn = handle.turn
        if turn is None or turn.usage is None or error is not None:
            return
        turn.usage.add_call(result)
        cost = result.get("cost_usd")
        if isinstance(cost, int | float):
            usage = turn.usage
            labels = (usage.person, usage.session, usage.agent, model)
            self._record("oxydra.cost", float(cost), labels)
        else:
            self._record("oxydra.unpriced_calls", 1, (model,))

    def _turn(
        self, handle: _Handle, result: dict[str, Any], seconds: float, error: str | None
    ) -> None:
        usage = handle.usage
        assert usage is not None
        outcome = str(result.get("outcome") or (error or "completed"))
        self._record("oxydra.turn.duration", seconds, (usage.agent, outcome))
        usage.duration_s, usage.outcome = seconds, outcome
        usage.trace_id = f"{handle.trace_id:032x}"
        if self.store is not None:
            self.store.usage(usage)

    def _record(self, name: str, value: float, labels: tuple[str, ...]) -> None:
        for sink in self.sinks:
            sink.record(name, value, labels)

    def _keep(self, handle: _Handle, pending: _Pending) -> None:
        buffer = handle.root.buffer
        if (self.store is None and self.bridge is None) or buffer is None:
            return
        if len(buffer) < MAX_TRACE_SPANS:
            buffer.append(pending)
        else:
            self.dropped_spans += 1
        if handle.root is handle:
            if self.store is not None:
                turns = [str(p.span_attrs.get("turn", "")) for p in buffer if p.name == "turn"]
                self.store.trace([t for t in turns if t], buffer, self.record_of)
            if self.bridge is not None:
                self.bridge.submit(buffer, self.describe)


def _new_usage(handle: _Handle, up: _Handle | None) -> TurnUsage:
    attrs = handle.attrs
    schedule = ""
    walk = up
    while walk is not None:
        if walk.name == "schedule.run":
            schedule = str(walk.attrs.get("schedule", ""))
            break
        walk = walk.parent
    return TurnUsage(
        turn_id=str(attrs.get("turn", "")),
        started_at=handle.wall / 1e9,
        duration_s=0.0,
        person=str(attrs.get("user", "")),
        session=str(attrs.get("session", "")),
        agent=str(attrs.get("agent", "default")),
        model=str(attrs.get("model", "")),
        provider=str(attrs.get("provider", "")),
        channel=str(attrs.get("channel", "")),
        schedule=schedule,
    )


def _id(bits: int) -> int:
    return _rng.getrandbits(bits) or 1
