"""The sender audit log under a flood: bounded lines, bounded bytes, nothing lost silently."""

from __future__ import annotations

import json
from pathlib import Path

from oxydra.channels import SenderAudit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_flood_from_many_senders_writes_a_bounded_number_of_lines(tmp_path: Path) -> None:
    clock = Clock()
    audit = SenderAudit(tmp_path / "audit.log", burst=20, per_minute=20, clock=clock)
    written = sum(audit.refuse("telegram", str(i), "sender not in authorized list", "chat_id=1")
                  for i in range(100_000))  # fmt: skip
    assert written == 20 and len(_lines(tmp_path / "audit.log")) == 20
    clock.now += 60  # a minute later the bucket has refilled: the count is written first
    assert audit.refuse("telegram", "x", "sender not in authorized list", "chat_id=1")
    summary, entry = _lines(tmp_path / "audit.log")[-2:]
    assert summary["reason"] == "suppressed" and summary["suppressed"] == 100_000 - 20
    assert entry["sender_id"] == "x"


def test_one_sender_hammering_costs_one_line_a_minute(tmp_path: Path) -> None:
    clock = Clock()
    audit = SenderAudit(tmp_path / "audit.log", clock=clock)
    for _ in range(500):
        audit.refuse("telegram", "666", "sender not in authorized list", "chat_id=666")
        clock.now += 0.1
    assert len(_lines(tmp_path / "audit.log")) == 1
    clock.now += 60
    audit.refuse("telegram", "666", "sender not in authorized list", "chat_id=666")
    assert len(_lines(tmp_path / "audit.log")) == 3  # the suppressed count, then the line


def test_the_file_is_rotated_so_the_disk_holds_two_generations_at_most(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "audit.log"
    audit = SenderAudit(path, burst=10_000, per_minute=1e9, max_bytes=4096, clock=clock)
    for i in range(2000):
        audit.refuse("telegram", str(i), "sender not in authorized list", "chat_id=1")
    assert path.stat().st_size <= 4096
    assert (tmp_path / "audit.log.1").stat().st_size <= 4096
    assert path.stat().st_mode & 0o777 == 0o600
