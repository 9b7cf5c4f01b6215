"""Cold start of `--help`: source tree and archive (first run and warm), next to `-c pass`.

Needs `dist/oxydra.pyz` (`make bench` builds it). The archive runs on the base interpreter
with `-I`, as a user with no virtualenv would run it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench._timing import run_median

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
