"""Where each millisecond of a one-shot `ask` goes: the per-phase record, imports, a profile.

Three views of the same turn against the loopback fake LLM:
1. `ask --json`'s timing record (its last line), medians of RUNS runs, for a text turn and
   a turn with one file tool (WASM guest): per phase the wall and CPU ms and the modules it
   imported; "after exit" is the process tree's CPU (`getrusage`) the record cannot see
   (the interpreter's teardown, the tool's child processes).
2. `python -X importtime`: the self time of every module, summed per package (the top ones).
   importtime's own bookkeeping inflates these, so read them as shares, not as ms.
3. `cProfile` of one text turn: the functions with the most own time (also inflated).
"""

from __future__ import annotations

import collections
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.bench_turns import TEXT_STEP, TOOL_STEP, _ask_cmd, _start_fake, fresh_home

RUNS = int(os.environ.get("OXY_BENCH_RUNS", "11"))


def _record(cmd: list[str], env: dict[str, str]) -> tuple[dict[str, object], float]:
    """The timing record of one `ask --json` run and the CPU of its process tree (ms)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [*cmd, "--json"], env={**os.environ, **env}, capture_output=True, check=True, text=True
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    record = json.loads(out.splitlines()[-1])
    assert record["type"] == "timing", record
    return record, cpu * 1000


def _table(title: str, runs: list[tuple[dict[str, object], float]]) -> None:
    rows: dict[str, list[tuple[float, float, int]]] = collections.defaultdict(list)
    for record, _ in runs:
        for row in record["phases"]:  # type: ignore[attr-defined]
            rows[row["name"]].append((row["wall_ms"], row["cpu_ms"], row["modules"]))
    print(f"{title} ({len(runs)} runs, medians)")
    print(f"  {'phase':<12} {'wall ms':>8} {'CPU ms':>8} {'modules':>8}")
    for name, values in rows.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        modules = statistics.median(v[2] for v in values)
        print(f"  {name:<12} {wall:8.1f} {cpu:8.1f} {modules:8.0f}")
    inside = statistics.median(float(r["cpu_ms"]) for r, _ in runs)  # type: ignore[arg-type]
    tree = statistics.median(c for _, c in runs)
    print(f"  {'after exit':<12} {'':>8} {tree - inside:8.1f}")
    print(f"  {'total':<12} {'':>8} {tree:8.1f}  (process tree, getrusage)")


def _importtime(cmd: list[str], env: dict[str, str], top: int = 25) -> None:
    err = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]],
        env={**os.environ, **env},
        capture_output=True,
        check=True,
        text=True,
    ).stderr
    by_package: collections.Counter[str] = collections.Counter()
    count = 0
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _cumulative, name = line.split(":", 1)[1].split("|")
        name = name.strip()
        parts = name.split(".")
        package = ".".join(parts[:2]) if parts[0] == "oxydra" else parts[0]
        by_package[package] += int(own)
        count += 1
    total = sum(by_package.values())
    print(f"imports of a text turn: {count} modules, {total / 1000:.1f} ms under -X importtime")
    for package, own in by_package.most_common(top):
        print(f"  {own / 1000:7.1f} ms  {100 * own / total:4.1f}%  {package}")


# `python -m cProfile -m oxydra` would write nothing: a one-shot `ask` ends the process with
# `os._exit` once its answer is out. `main()` without `exit_process` returns instead.
_PROFILED = """
import cProfile, sys
out, sys.argv = sys.argv[1], ["oxydra", *sys.argv[2:]]
profile = cProfile.Profile()
profile.enable()
try:
    from oxydra.cli import main
    main()
finally:
    profile.disable()
    profile.dump_stats(out)
"""


def _profile(cmd: list[str], env: dict[str, str], top: int = 20) -> None:
    assert cmd[1:3] == ["-m", "oxydra"], cmd
    with tempfile.NamedTemporaryFile(suffix=".prof") as out:
        subprocess.run(
            [cmd[0], "-c", _PROFILED, out.name, *cmd[3:]],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        stats = pstats.Stats(out.name)
    print(f"profile of a text turn: top {top} functions by own time (inflated by cProfile)")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]  # type: ignore[attr-defined]
    for (filename, line, func), (_cc, calls, own, _cum, _callers) in rows:
        where = filename.split("site-packages/")[-1].split("/oxydra/", 1)[-1]
        print(f"  {own * 1000:7.1f} ms {calls:6d}x  {func} ({where}:{line})")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = fresh_home(tmp)
        text, call = [TEXT_STEP], TOOL_STEP
        # the text turns first, then the tool turns (each two calls), then the extra views
        script = text * (RUNS + 2) + [call, *text] * RUNS + text * 4
        record = Path(tmp) / "requests.jsonl"
        proc, url = _start_fake(script, record)
        try:
            ask = _ask_cmd(url, "hello")
            _record(ask, env)  # the store's first open and migration, the page cache
            _record(ask, env)
            texts = [_record(ask, env) for _ in range(RUNS)]
            tool = _ask_cmd(url, "write a file")
            tools = [_record(tool, env) for _ in range(RUNS)]
            print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
            _table("ask, text turn", texts)
            _table("ask, one file tool (WASM guest)", tools)
            _importtime(ask, env)
            _profile(ask, env)
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
