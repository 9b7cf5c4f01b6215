"""The ledger and the span store through the real CLI: `ask`, then `usage` and `trace`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from oxydra.testing.fake_llm import Call, FakeLLM, Reply
from oxydra.testing.fake_llm import Usage as FakeUsage
from tests.runtime.test_ask import ask_cmd, run

PROBE = """
import sys
from oxydra.cli import main
try:
    code = main(sys.argv[1:])
finally:
    loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('opentelemetry', 'google'))
    print('OTEL-MODULES=' + ','.join(loaded), file=sys.stderr)
sys.exit(code)
"""


def probe_cmd(cmd: list[str]) -> list[str]:
    """`cmd` (python -m oxydra ...) run through a probe printing the OTel modules loaded."""
    assert cmd[1:3] == ["-m", "oxydra"]
    return [sys.executable, "-c", PROBE, *cmd[3:]]


def oxydra(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "oxydra", *args]


async def test_an_ask_turn_lands_in_the_ledger_and_its_trace_is_drawn(tmp_path: Path) -> None:
    script = [
        Reply(
            tool_calls=[Call(name="file_write", arguments={"path": "/shared/a", "content": "1"})],
            usage=FakeUsage(prompt_tokens=1200, completion_tokens=30),
        ),
        Reply(text="Written.", usage=FakeUsage(prompt_tokens=1300, completion_tokens=7)),
    ]
    async with FakeLLM(script) as llm:
        code, out, err = await run(probe_cmd(ask_cmd(llm.base_url, "write it")), tmp_path)
    assert code == 0, err
    assert "OTEL-MODULES=\n" in err  # an observability-off turn imports none of the SDK
    code, out, err = await run(oxydra(tmp_path, "usage", "--by", "model", "--json"), tmp_path)
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["model"], r["turns"], r["calls"]) for r in rows] == [("gpt-4o-mini", 1, 2)]
    assert rows[0]["input_tokens"] == 2500 and rows[0]["output_tokens"] == 37
    assert rows[0]["cost_usd"] is not None and rows[0]["cost_usd"] > 0
    code, out, _ = await run(oxydra(tmp_path, "trace"), tmp_path)
    turn_id = out.split()[-1]
    code, out, err = await run(oxydra(tmp_path, "trace", turn_id[:10]), tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    names = [line.split("|")[0].rstrip() for line in lines[1:]]
    assert names == [
        "invoke_agent default",
        "  chat gpt-4o-mini",
        "  execute_tool file_write",
        "  chat gpt-4o-mini",
    ], out
    assert "tokens 1200→30" in lines[2] and "$" in lines[2]
    assert "tokens 2500→37" in lines[1]


async def test_a_model_without_a_price_costs_unknown_never_zero(tmp_path: Path) -> None:
    async with FakeLLM([Reply(text="hi")]) as llm:
        unlisted = ["selection.model=house-model-7b", "catalog.skip_catalog_validation=true"]
        cmd = ask_cmd(llm.base_url, *[a for s in unlisted for a in ("--set", s)], "hello")
        code, _, err = await run(cmd, tmp_path)
    assert code == 0, err
    code, out, err = await run(oxydra(tmp_path, "usage", "--by", "model", "--json"), tmp_path)
    rows = json.loads(out)
    assert rows[0]["model"] == "house-model-7b"
    assert rows[0]["cost_usd"] is None and rows[0]["unpriced_turns"] == 1
    code, out, _ = await run(oxydra(tmp_path, "usage", "--by", "model"), tmp_path)
    assert "unknown (1 turns without a price)" in out
    code, out, _ = await run(oxydra(tmp_path, "trace"), tmp_path)
    code, out, _ = await run(oxydra(tmp_path, "trace", out.split()[-1]), tmp_path)
    assert "cost unknown" in out and "$0.0" not in out


async def test_help_imports_none_of_the_sdk(tmp_path: Path) -> None:
    code, _, err = await run(probe_cmd(oxydra(tmp_path, "--help")), tmp_path)
    assert code == 0 and "OTEL-MODULES=\n" in err


async def test_usage_rejects_a_bad_since_and_trace_an_unknown_turn(tmp_path: Path) -> None:
    async with FakeLLM([Reply(text="hi")]) as llm:
        await run(ask_cmd(llm.base_url, "hello"), tmp_path)
    code, _, err = await run(oxydra(tmp_path, "usage", "--since", "last tuesday"), tmp_path)
    assert code == 2 and "--since 'last tuesday'" in err
    code, _, err = await run(oxydra(tmp_path, "trace", "no-such-turn"), tmp_path)
    assert code == 1 and "no stored trace" in err
