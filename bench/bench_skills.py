"""Skills: prompt bytes the index adds, and discovery time at session start.

`python -m bench skills`. Skills are generated with realistic one-line descriptions
(60-200 characters, like the Agent Skills examples) and a ~2 KB body each.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

from oxydra.tools.skills import INDEX_BUDGET, SkillRegistry, Source, discover

WORDS = "report summarise draft review invoice calendar email release build deploy data".split()


def _make(root: Path, count: int, seed: int = 7) -> list[Source]:
    rng = random.Random(seed)
    for i in range(count):
        folder = root / f"skill-{i:03d}"
        (folder / "references").mkdir(parents=True)
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 28)))
        description = f"Use when the user asks to {words}."
        body = "\n".join(f"{n}. step {n}: {words}" for n in range(40))
        (folder / "SKILL.md").write_text(
            f"---\nname: skill-{i:03d}\ndescription: {description}\n"
            f"metadata:\n  author: bench\n---\n\n{body}\n"
        )
        (folder / "references" / "notes.md").write_text(body)
    return [Source(label=str(root), root=str(root))]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sources = _make(Path(tmp) / "fifty", 50)
        registry = SkillRegistry(discover(sources))
        index = registry.index()
        listed = index.count("\n- skill-")
        print(
            f"index for 50 skills: {len(index.encode())} bytes (budget {INDEX_BUDGET}), "
            f"{listed} listed by name, {50 - listed} counted in the overflow line"
        )
        unbounded = SkillRegistry(discover(sources), index_budget=1 << 20).index()
        print(f"index for 50 skills without the budget: {len(unbounded.encode())} bytes")

        sources = _make(Path(tmp) / "many", 200)
        times = []
        for _ in range(7):
            start = time.perf_counter()
            SkillRegistry(discover(sources)).index()
            times.append(time.perf_counter() - start)
        median_ms = statistics.median(times) * 1000
        print(f"discovery of 200 skills (parse + hash + index): median {median_ms:.1f} ms, 7 runs")
