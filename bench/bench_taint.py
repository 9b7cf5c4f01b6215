"""Taint-aware execution: injection scenarios gated, benign flows prompted, bookkeeping cost.

Run from the repository root: `python -m bench taint`. The scenarios are the ones the
tests run (`oxydra.testing.taint_scenarios`): real turns through the loopback fake LLM, a
hostile page on loopback, the guest's real memory, scheduler and tools.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from oxydra.config.schema import TaintConfig  # noqa: E402
from oxydra.core import ImpactClass, Message, untrusted  # noqa: E402
from oxydra.security import Workspace  # noqa: E402
from oxydra.security.taint import TaintDecision, context_label, for_model  # noqa: E402
from oxydra.testing import taint_scenarios as ts  # noqa: E402
from oxydra.tools import LocalFileBackend, ToolExecutionContext, ToolRegistry, tool  # noqa: E402
from oxydra.tools._taint import TaintGuard  # noqa: E402

CALLS = 1000
WEB = untrusted("web_fetch", "https://example.test/page")


async def _scenarios() -> None:
    attacks = [await ts.run(s) for s in ts.ATTACKS]
    controls = [await ts.run(s) for s in ts.CONTROLS]
    unguarded = [await ts.run(s, mode="off") for s in ts.ATTACKS]
    gated, harm = sum(o.gated for o in attacks), sum(o.harm for o in attacks)
    print(f"injection scenarios tried: {len(attacks)}, gated or refused: {gated}, harm: {harm}")
    for o in attacks:
        how = "asked, sources shown" if o.sources_shown else "asked" if o.prompts else "refused"
        print(f"  {o.name:<44} {how}")
    print(f"same attacks with [security.taint] mode = \"off\": harm done "
          f"{sum(o.harm for o in unguarded)}/{len(unguarded)}")  # fmt: skip
    prompted = sum(o.prompts > 0 or o.refused > 0 for o in controls)
    print(f"benign flows: {len(controls)}, asked for approval or refused: {prompted}")
    for o in controls:
        print(f"  {o.name:<44} prompts {o.prompts} refused {o.refused}")


class _NoBookkeeping(TaintGuard):
    """The baseline: the registry's taint hooks do nothing."""

    def check(self, tool, args, ctx):  # type: ignore[no-untyped-def]
        return TaintDecision(action="allow", impact=ImpactClass.READ_ONLY)

    def result_label(self, tool, args, reads):  # type: ignore[no-untyped-def]
        return None

    async def after_write(self, tool, args, ctx):  # type: ignore[no-untyped-def]
        return None


@tool(name="echo")
async def echo(text: str) -> str:
    """Echo the text back.

    Args:
        text: Anything.
    """
    return text


async def _round(registry: ToolRegistry, ctx: ToolExecutionContext) -> float:
    start = time.perf_counter()
    for _ in range(CALLS):
        await registry.execute("echo", {"text": "hello"}, ctx)
    return (time.perf_counter() - start) / CALLS * 1e6


async def _bookkeeping() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        backend = LocalFileBackend(Workspace.for_user(root))
        baseline = ToolRegistry(taint=_NoBookkeeping())
        baseline.register(echo)
        plain = ToolExecutionContext(user_id="u", session_id="s", workspace=backend)
        setups = {"no taint bookkeeping": (baseline, plain)}
        for name, config, label in (
            ("taint off, trusted step", TaintConfig(mode="off"), None),
            ("taint on, trusted step", TaintConfig(), None),
            ("taint on, tainted step", TaintConfig(), WEB),
        ):
            guard = TaintGuard.for_workspace(config, root, environ={}, secrets=["sk-x" * 6])
            registry = ToolRegistry(taint=guard)
            registry.register(echo)
            ctx = ToolExecutionContext(user_id="u", session_id="s", workspace=backend, taint=label)
            setups[name] = (registry, ctx)
        samples: dict[str, list[float]] = {name: [] for name in setups}
        for _ in range(9):  # interleaved rounds: drift on a shared machine hits all alike
            for name, (registry, ctx) in setups.items():
                samples[name].append(await _round(registry, ctx))
        figures = {name: statistics.median(values[1:]) for name, values in samples.items()}
        base = figures["no taint bookkeeping"]
        for name, micros in figures.items():
            print(f"registry call, {name:<26} {micros:7.1f} µs  (+{micros - base:5.1f} µs)")
    history = [
        Message(role="tool", content="x" * 2000, tool_call_id=str(i), name="web_fetch",
                label=WEB if i % 5 == 0 else None)
        for i in range(50)
    ]  # fmt: skip
    start = time.perf_counter()
    rounds = 200
    for _ in range(rounds):
        for_model(history, b"k" * 16)
        context_label(history)
    per_step = (time.perf_counter() - start) / rounds * 1e6
    print(f"per model step, 50 messages (10 untrusted, 2 KB each): label + wrap {per_step:.0f} µs")


def main() -> None:
    """Print every figure."""
    asyncio.run(_scenarios())
    asyncio.run(_bookkeeping())


if __name__ == "__main__":
    main()
