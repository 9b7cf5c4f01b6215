"""Cold start of `--help`: source tree and archive (first run and warm), next to `-c pass`;
and the archive's first `ask` text turn from an empty cache, next to the floor (a bare httpx
streaming request from a fresh process, bench_turns' `BARE`).

Needs `dist/oxydra.pyz` (`make bench` builds it). The archive runs on the base interpreter
with `-I`, as a user with no virtualenv would run it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench._timing import run_median, run_stats
from bench.bench_turns import BARE, _ask_cmd, _start_fake

ROOT = Path(__file__).resolve().parents[1]
RUNS = 21


def main() -> None:
    base = str(Path(sys.base_prefix) / "bin" / "python3")
    pyz = ROOT / "dist" / "oxydra.pyz"
    bare = run_median([base, "-I", "-c", "pass"], RUNS)
    venv_bare = run_median([sys.executable, "-c", "pass"], RUNS)
    module = run_median([sys.executable, "-m", "oxydra", "--help"], RUNS)
    print(f"python -c pass (base, -I):        {bare * 1000:7.1f} ms")
    print(f"python -c pass (venv):            {venv_bare * 1000:7.1f} ms")
    print(f"python -m oxydra --help (venv):   {module * 1000:7.1f} ms  ({module / venv_bare:.2f}x)")
    if not pyz.exists():
        print("dist/oxydra.pyz missing: run `make pyz`")
        return
    firsts = []
    unpacked = 0
    for _ in range(3):
        with tempfile.TemporaryDirectory() as cache:
            firsts.append(
                run_median([base, "-I", str(pyz), "--help"], 1, {"OXYDRA_PYZ_CACHE": cache})
            )
            unpacked = sum(p.stat().st_size for p in Path(cache).rglob("*") if p.is_file())
    first = sorted(firsts)[1]
    with tempfile.TemporaryDirectory() as cache:
        env = {"OXYDRA_PYZ_CACHE": cache}
        run_median([base, "-I", str(pyz), "--help"], 1, env)
        warm = run_median([base, "-I", str(pyz), "--help"], RUNS, env)
    print(
        f"oxydra.pyz --help, first run:     {first * 1000:7.1f} ms  "
        f"(unpacks {unpacked / 1e6:.1f} MB; native packages wait for their first import)"
    )
    print(f"oxydra.pyz --help, warm:          {warm * 1000:7.1f} ms  ({warm / bare:.2f}x -c pass)")
    first_turn(base, pyz)


def first_turn(base: str, pyz: Path, rounds: int = 5) -> None:
    """A text turn of the archive from an empty cache and a new HOME, interleaved with the
    floor; CPU of the process tree (medians)."""
    import statistics

    with tempfile.TemporaryDirectory() as tmp:
        text = [{"kind": "reply", "text": "Hello! " * 30}]
        proc, url = _start_fake(text * (3 * rounds + 2), Path(tmp) / "requests.jsonl")
        ask = [base, "-I", str(pyz), *_ask_cmd(url, "hello")[3:]]
        floor, first, unpacked = [], [], 0
        try:
            for index in range(rounds):
                floor.append(run_stats([sys.executable, "-c", BARE, url], 1))
                home = Path(tmp) / f"home{index}"
                home.mkdir()
                env = {"HOME": str(home), "OXYDRA_PYZ_CACHE": str(home / "cache")}
                first.append(run_stats(ask, 1, env))
                unpacked = sum(p.stat().st_size for p in home.rglob("cache/**/*") if p.is_file())
                floor.append(run_stats([sys.executable, "-c", BARE, url], 1))
        finally:
            proc.terminate()
            proc.wait()
    cpu = statistics.median(c for _, c in first)
    base_cpu = statistics.median(c for _, c in floor)
    print(
        f"oxydra.pyz ask, first run:        {cpu * 1000:7.1f} ms CPU ({cpu / base_cpu:.2f}x the "
        f"floor's {base_cpu * 1000:.1f}; unpacks {unpacked / 1e6:.1f} MB; archive "
        f"{pyz.stat().st_size / 1e6:.1f} MB)"
    )
