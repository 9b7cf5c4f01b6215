"""`runner logs`: tails, `since`, roles and streams, the size cap, the output format."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from oxydra.runner._logs import format_entry, parse_since, read_logs
from oxydra.runner._workspace import UserWorkspace, provision
from oxydra.wire.control import LogEntry, LogsRequest


@pytest.fixture
def ws(tmp_path: Path) -> UserWorkspace:
    ws = provision(tmp_path / "alice")
    ws.log_file("oxydra-vm", "stdout").write_text(
        "2026-01-01T10:00:00Z info boot\n2026-01-01T10:00:02Z info listening\n"
    )
    ws.log_file("oxydra-vm", "stderr").write_text(
        "2026-01-01T10:00:01Z error boom\nTraceback line one\n  line two\n"
    )
    ws.log_file("shell-vm", "stdout").write_text("2026-01-01T10:00:03Z sidecar up\n")
    return ws


def messages(ws: UserWorkspace, **kw: object) -> list[str]:
    return [e.message for e in read_logs(ws, LogsRequest(**kw), docker=False).entries]  # type: ignore[arg-type]


class TestReadLogs:
    def test_both_streams_of_the_runtime_merge_in_time_order(self, ws: UserWorkspace) -> None:
        assert messages(ws) == [
            "info boot",
            "error boom",
            "Traceback line one",
            "  line two",
            "info listening",
        ]

    def test_lines_without_a_timestamp_inherit_the_one_above(self, ws: UserWorkspace) -> None:
        entries = read_logs(ws, LogsRequest(stream="stderr"), docker=False).entries
        assert [e.timestamp for e in entries] == ["2026-01-01T10:00:01Z"] * 3

    @pytest.mark.parametrize(
        ("kw", "expected"),
        [
            ({"role": "sidecar"}, ["sidecar up"]),
            ({"stream": "stdout"}, ["info boot", "info listening"]),
            ({"role": "all", "tail": 2}, ["info listening", "sidecar up"]),
            ({"since": "2026-01-01T10:00:02Z"}, ["info listening"]),
        ],
    )
    def test_selection(self, ws: UserWorkspace, kw: dict[str, object], expected: list[str]) -> None:
        assert messages(ws, **kw) == expected

    def test_the_tail_clamp_says_it_truncated(self, ws: UserWorkspace) -> None:
        answer = read_logs(ws, LogsRequest(tail=1), docker=False)
        assert answer.truncated and [e.message for e in answer.entries] == ["info listening"]

    def test_the_answer_stays_under_the_frame_budget(self, ws: UserWorkspace) -> None:
        line = "x" * 4000
        ws.log_file("oxydra-vm", "stdout").write_text(
            "".join(f"2026-01-01T11:00:{i % 60:02d}Z {line}\n" for i in range(200))
        )
        answer = read_logs(ws, LogsRequest(tail=1000, stream="stdout"), docker=False)
        assert answer.truncated
        assert sum(len(e.message) for e in answer.entries) < 120 * 1024

    def test_a_missing_file_gives_no_lines(self, tmp_path: Path) -> None:
        assert messages(provision(tmp_path / "empty")) == []

    def test_container_logs_are_labelled_as_from_the_docker_api(self, ws: UserWorkspace) -> None:
        entry = read_logs(ws, LogsRequest(tail=1), docker=True).entries[0]
        assert entry.source == "docker_api"


class TestSince:
    NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("30s", "2026-01-02T11:59:30Z"),
            ("5m", "2026-01-02T11:55:00Z"),
            ("2h", "2026-01-02T10:00:00Z"),
            ("1d", "2026-01-01T12:00:00Z"),
            ("2026-01-01T09:00:00Z", "2026-01-01T09:00:00Z"),
            ("2026-01-01T10:00:00+01:00", "2026-01-01T09:00:00Z"),
        ],
    )
    def test_durations_and_times_become_utc_timestamps(self, text: str, expected: str) -> None:
        assert parse_since(text, self.NOW) == expected

    def test_nonsense_is_refused(self) -> None:
        with pytest.raises(ValueError, match="RFC 3339"):
            parse_since("yesterday")


def test_text_lines_follow_the_upstream_format() -> None:
    entry = LogEntry(source="process_file", role="runtime", stream="stderr", message="m")
    assert format_entry(entry, "text") == "- [process_file][runtime][stderr] m"
    assert format_entry(entry, "json").startswith('{"source":"process_file"')
