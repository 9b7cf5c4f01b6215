"""bench_peers downloads nothing unless asked, and refuses a run its fake LLM did not see."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import bench_peers
from bench.bench_peers import Command, Fake


def test_a_plain_bench_run_prints_how_and_installs_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "argv", ["bench/__main__.py"])
    monkeypatch.delenv("OXYDRA_BENCH_PEERS", raising=False)
    monkeypatch.setenv("OXYDRA_BENCH_PEERS_CACHE", str(tmp_path))
    bench_peers.main()
    assert capsys.readouterr().out == bench_peers.HOW + "\n"
    assert list(tmp_path.iterdir()) == []


def _record(path: Path, *bodies: dict[str, object]) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps({"method": "GET", "path": "/props", "body": ""}) + "\n")
        for body in bodies:
            line = {"method": "POST", "path": "/v1/chat/completions", "body": json.dumps(body)}
            handle.write(json.dumps(line) + "\n")


def _command(tmp_path: Path, kind: str) -> Command:
    fake = Fake(proc=subprocess.Popen(["true"], text=True), url="", record=tmp_path / "r.jsonl")
    fake.proc.wait()
    return Command("agent", lambda _: [], {}, str(tmp_path), kind, fake)


def test_a_tool_turn_whose_second_call_carries_no_tool_result_stops_the_bench(
    tmp_path: Path,
) -> None:
    command = _command(tmp_path, "tool")
    user = {"messages": [{"role": "user", "content": "write a file"}]}
    _record(command.fake.record, user, user)  # type: ignore[union-attr]
    with pytest.raises(SystemExit, match="no tool result"):
        command.check()


def test_a_turn_that_never_reached_the_fake_stops_the_bench(tmp_path: Path) -> None:
    command = _command(tmp_path, "text")
    with pytest.raises(SystemExit, match="0 model calls, expected 1"):
        command.check("Hello!")


def test_a_checked_run_counts_model_calls_and_other_requests(tmp_path: Path) -> None:
    command = _command(tmp_path, "tool")
    first = {"messages": [{"role": "user", "content": "write a file"}]}
    second = {"messages": [{"role": "tool", "content": "ok"}]}
    _record(command.fake.record, first, second)  # type: ignore[union-attr]
    command.check(f"... {bench_peers.DONE}")
    _record(command.fake.record, first, second)  # type: ignore[union-attr]
    with pytest.raises(SystemExit, match="is not in its output"):
        command.check("an answer the script never gave")
    assert command.calls == [2, 2]
    assert command.others == [1, 1]
