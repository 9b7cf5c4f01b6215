"""The span hook in process: ledger rows, stored trees, metrics, hostile trace context."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxydra.config.schema import ObservabilityConfig
from oxydra.core.log import current_traceparent, span, span_event
from oxydra.observability import Observability, parse_traceparent, start_observability
from oxydra.observability._metrics import PromRegistry
from oxydra.observability._store import db_path, load_trace, open_db
from oxydra.observability._waterfall import render_waterfall


@pytest.fixture
def obs(tmp_path: Path) -> Iterator[Observability]:
    config = ObservabilityConfig(local_turns=3, max_attribute_chars=64)
    observability = start_observability(config, workspace=tmp_path, environ={})
    yield observability
    observability.store.close()  # type: ignore[union-attr]
    from oxydra.core.log import set_span_hook

    set_span_hook(None)


def _turn(turn_id: str, *, cost: float | None, tokens: int = 100, agent: str = "default") -> None:
    with span(
        "turn", session="s1", turn=turn_id, user="ann", agent=agent, model="m", provider="openai"
    ):
        with span("chat", provider="openai", model="m") as seen:
            span_event("retry", attempt=1, error="ProviderHTTPError")
            seen.update(input_tokens=tokens, output_tokens=5, cost_usd=cost)
        with span("tool.call", tool="file_read") as seen:
            seen.update(outcome="ok", truncated=True, _result="secret output")


def _rows(obs: Observability) -> list[sqlite3.Row]:
    obs.flush()
    db = open_db(db_path(obs.store.path.parents[1]), readonly=True)  # type: ignore[union-attr]
    db.row_factory = sqlite3.Row
    return db.execute("SELECT * FROM usage ORDER BY started_at").fetchall()


class TestLedger:
    def test_a_turn_becomes_one_row_with_tokens_and_cost(self, obs: Observability) -> None:
        _turn("t1", cost=0.25)
        (row,) = _rows(obs)
        assert (row["person"], row["session"], row["agent"], row["model"]) == (
            "ann", "s1", "default", "m",
        )  # fmt: skip
        assert (row["calls"], row["input_tokens"], row["output_tokens"]) == (1, 100, 5)
        assert row["cost_usd"] == 0.25 and row["unpriced_calls"] == 0

    def test_a_call_without_a_price_makes_the_turn_cost_unknown(self, obs: Observability) -> None:
        _turn("t1", cost=None)
        (row,) = _rows(obs)
        assert row["cost_usd"] is None and row["unpriced_calls"] == 1
        assert 'oxydra_unpriced_calls_total{gen_ai_request_model="m"} 1' in obs.registry.render()

    def test_a_scheduled_turn_names_its_schedule_and_a_sub_agent_has_its_own_row(
        self, obs: Observability
    ) -> None:
        with span("schedule.run", schedule="daily-news", run="r1"):
            with span("turn", session="scheduled:x", turn="t1", user="ann", agent="default"):
                with span("tool.call", tool="delegate_to_agent"):
                    _turn("t2", cost=0.5, agent="researcher")
                with span("chat", provider="openai", model="m") as seen:
                    seen.update(input_tokens=7, cost_usd=0.1)
        rows = {r["turn_id"]: r for r in _rows(obs)}
        assert rows["t1"]["schedule"] == rows["t2"]["schedule"] == "daily-news"
        assert (rows["t1"]["input_tokens"], rows["t2"]["input_tokens"]) == (7, 100)
        assert rows["t2"]["agent"] == "researcher"


class TestSpanStore:
    def test_only_the_last_n_turns_are_kept_and_a_prefix_finds_one(
        self, obs: Observability
    ) -> None:
        for n in range(5):
            _turn(f"turn-{n}", cost=0.01)
        obs.flush()
        db = open_db(db_path(obs.store.path.parents[1]), readonly=True)  # type: ignore[union-attr]
        kept = [r[0] for r in db.execute("SELECT turn_id FROM traces ORDER BY rowid")]
        assert kept == ["turn-2", "turn-3", "turn-4"]
        spans = load_trace(db, "turn-4")
        assert spans is not None and [s.name for s in spans][-1] == "invoke_agent default"
        assert load_trace(db, "turn-") is None  # ambiguous prefix
        assert load_trace(db, "%") is None  # LIKE wildcards are escaped

    def test_the_waterfall_shows_tokens_cost_events_and_flags(self, obs: Observability) -> None:
        _turn("t1", cost=0.002)
        obs.flush()
        db = open_db(db_path(obs.store.path.parents[1]), readonly=True)  # type: ignore[union-attr]
        lines = render_waterfall(load_trace(db, "t1") or [])
        assert lines[1].startswith("invoke_agent default ")
        assert "chat m" in lines[2] and "tokens 100→5" in lines[2] and "[retry]" in lines[2]
        assert "$0.002000" in lines[2]
        assert "execute_tool file_read" in lines[3] and "truncated" in lines[3]
        assert "secret output" not in "\n".join(lines)  # content is off by default


class TestTraceContext:
    @pytest.mark.parametrize(
        "value",
        [
            None,
            "",
            "garbage",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" + "-x" * 10_000,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        ],
    )
    def test_a_bad_traceparent_is_ignored(self, value: str | None) -> None:
        assert parse_traceparent(value) is None

    def test_a_good_traceparent_parents_the_root_and_round_trips(self, obs: Observability) -> None:
        remote = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        with span("turn", remote_parent=remote, turn="t1"):
            inner = current_traceparent()
        assert inner is not None and inner.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        assert parse_traceparent(inner) is not None

    def test_a_bad_traceparent_starts_a_fresh_trace(self, obs: Observability) -> None:
        with span("turn", remote_parent="00-zz", turn="t1"):
            inner = current_traceparent()
        assert parse_traceparent(inner) is not None

    def test_without_a_hook_there_is_no_trace_context(self) -> None:
        with span("turn", turn="t1"):
            assert current_traceparent() is None


class TestPrometheusText:
    def test_label_values_are_escaped(self) -> None:
        registry = PromRegistry()
        registry.record("oxydra.tool.calls", 1, ('we"ird\\tool\nname', "ok"))
        text = registry.render()
        assert 'gen_ai_tool_name="we\\"ird\\\\tool\\nname"' in text

    def test_series_beyond_the_cap_are_folded_into_other(self) -> None:
        registry = PromRegistry(max_series=3)
        for n in range(10):
            registry.record("oxydra.cost", 0.5, ("ann", f"s{n}", "default", "m"))
        text = registry.render()
        assert text.count("oxydra_cost_usd_total{") == 4
        assert 'session="_other"' in text and "} 3.5" in text

    def test_histograms_have_cumulative_buckets(self) -> None:
        registry = PromRegistry()
        registry.record("gen_ai.client.token.usage", 100, ("chat", "openai", "m", "input"))
        text = registry.render()
        assert 'le="64"} 0' in text and 'le="256"} 1' in text and 'le="+Inf"} 1' in text
        assert "gen_ai_client_token_usage_sum{" in text


class TestUsageReport:
    def test_rows_group_by_day_and_since_filters_by_start(self, obs: Observability) -> None:
        from oxydra.commands.observability import parse_since, usage_rows

        _turn("t1", cost=0.25)
        _turn("t2", cost=None)
        _rows(obs)
        db = open_db(db_path(obs.store.path.parents[1]), readonly=True)  # type: ignore[union-attr]
        (day,) = usage_rows(db, "day", 0.0)
        assert day["turns"] == 2 and day["calls"] == 2
        assert day["cost_usd"] is None and day["priced_cost_usd"] == 0.25
        assert day["unpriced_turns"] == 1
        assert usage_rows(db, "person", parse_since("1h")) != []
        assert usage_rows(db, "person", parse_since("2099-01-01")) == []

    @pytest.mark.parametrize(
        ("text", "seconds_ago"), [("12h", 43200), ("7d", 604800), ("2w", 1209600)]
    )
    def test_since_accepts_relative_spans(self, text: str, seconds_ago: int) -> None:
        from oxydra.commands.observability import parse_since

        assert parse_since(text, now=2_000_000.0) == 2_000_000.0 - seconds_ago
