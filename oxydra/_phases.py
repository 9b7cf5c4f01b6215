"""Where a one-shot process spends its time: named phases, wall and CPU (`ask --json`).

One phase is current at a time; `switch` charges the time since the last switch to the
phase that was current, and `phase(name)` makes `name` current for a block (a nested phase's
time is charged to it alone). The first switch charges everything before it — the
interpreter's start, the archive's bootstrap — to `interpreter`. Nothing is recorded until
`start()`; the `vm` never starts it, so its concurrent turns pay one global read per switch.

CPU is `time.process_time()` (every thread of the process); wall is `time.perf_counter()`,
except the interpreter's wall time, read from the process's start in /proc (10 ms ticks).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class _Recorder:
    def __init__(self, first: str) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        self.modules = len(sys.modules)
        self.totals: dict[str, list[float]] = {
            "interpreter": [_since_exec(), self.cpu, self.modules]
        }
        self.current = first

    def switch(self, name: str) -> str:
        wall, cpu, modules = time.perf_counter(), time.process_time(), len(sys.modules)
        spent = self.totals.setdefault(self.current, [0.0, 0.0, 0])
        spent[0] += wall - self.wall
        spent[1] += cpu - self.cpu
        spent[2] += modules - self.modules
        self.wall, self.cpu, self.modules = wall, cpu, modules
        previous, self.current = self.current, name
        return previous


_recorder: _Recorder | None = None


def _since_exec() -> float:
    """Wall seconds since this process started, from /proc (0.0 where unavailable)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        started = int(fields[19]) / _TICKS  # field 22, counted after the command name
        return max(time.clock_gettime(time.CLOCK_BOOTTIME) - started, 0.0)
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def start(first: str) -> None:
    """Begin recording in phase `first` (at the command line's entry); what came before is
    charged to `interpreter`."""
    global _recorder
    _recorder = _Recorder(first)


def stop() -> None:
    """Stop recording and forget the figures (a mode that never reports them)."""
    global _recorder
    _recorder = None


def switch(name: str) -> str:
    """Charge the time since the last switch to the current phase; make `name` current.

    Returns the phase that was current, for the caller to switch back to.
    """
    recorder = _recorder
    return recorder.switch(name) if recorder is not None else name


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Charge the block's time to `name` (minus what nested phases take)."""
    if _recorder is None:
        yield
        return
    previous = switch(name)
    try:
        yield
    finally:
        switch(previous)


def report() -> dict[str, object] | None:
    """The phases so far, in first-use order: `{"phases": [{name, wall_ms, cpu_ms, modules}],
    "wall_ms", "cpu_ms", "modules"}` (`modules`: how many it imported); None when not
    recording."""
    recorder = _recorder
    if recorder is None:
        return None
    recorder.switch(recorder.current)
    totals = recorder.totals.items()
    rows: list[dict[str, object]] = [
        {
            "name": name,
            "wall_ms": round(wall * 1000, 3),
            "cpu_ms": round(cpu * 1000, 3),
            "modules": int(modules),
        }
        for name, (wall, cpu, modules) in totals
    ]
    return {
        "phases": rows,
        "wall_ms": round(sum(wall for wall, _, _ in recorder.totals.values()) * 1000, 3),
        "cpu_ms": round(sum(cpu for _, cpu, _ in recorder.totals.values()) * 1000, 3),
        "modules": len(sys.modules),
    }
