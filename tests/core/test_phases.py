"""The phase recorder behind `ask --json`'s timing record."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from oxydra import _phases as phases


@pytest.fixture(autouse=True)
def _stopped() -> Iterator[None]:
    yield
    phases.stop()


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def _row(report: dict[str, object], name: str) -> dict[str, float]:
    rows = report["phases"]
    assert isinstance(rows, list)
    return next(r for r in rows if r["name"] == name)


def test_a_nested_phase_takes_its_time_from_the_enclosing_one() -> None:
    phases.start("outer")
    _spin(0.02)
    with phases.phase("inner"):
        _spin(0.03)
    _spin(0.01)
    report = phases.report()
    assert report is not None
    inner, outer = _row(report, "inner"), _row(report, "outer")
    assert inner["cpu_ms"] >= 30 and outer["cpu_ms"] >= 30
    assert outer["cpu_ms"] < 30 + inner["cpu_ms"]  # the inner block is not counted twice
    assert _row(report, "interpreter")["cpu_ms"] > 0  # what ran before start()


def test_a_switch_returns_the_phase_to_go_back_to() -> None:
    phases.start("a")
    assert phases.switch("b") == "a"
    assert phases.switch("a") == "b"


def test_nothing_is_recorded_when_stopped() -> None:
    phases.start("a")
    phases.stop()
    with phases.phase("b"):
        pass
    assert phases.report() is None
    assert phases.switch("c") == "c"


def test_modules_imported_in_a_phase_are_counted() -> None:
    import sys

    phases.start("a")
    with phases.phase("importing"):
        sys.modules["oxydra_phase_probe"] = sys  # as an import would add it
    del sys.modules["oxydra_phase_probe"]
    report = phases.report()
    assert report is not None
    assert _row(report, "importing")["modules"] == 1
