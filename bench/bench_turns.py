"""One-shot turns from a fresh process, next to a bare httpx streaming request.

Figures: `ask` text turn and `ask` with one tool call, each as a ratio to a fresh
`python -c 'import httpx; <one streaming POST>'` against the same loopback fake LLM; and the
request body of one call (prompt + tool schemas), in bytes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._timing import run_median, run_stats

RUNS = 15
# The fake LLM's steps of a text turn and of a tool turn's first call (bench_phases too).
TEXT_STEP: dict[str, object] = {"kind": "reply", "text": "Hello! " * 30}
TOOL_STEP: dict[str, object] = {
    "kind": "reply",
    "tool_calls": [{"name": "file_write", "arguments": {"path": "/shared/a.txt", "content": "x"}}],
}
# A shell turn's first call: its requests carry this conversation header (an `extra_headers`
# entry), which the fake LLM routes to a conversation of its own.
SHELL_CONVERSATION = "bench-shell"
SHELL_STEP: dict[str, object] = {
    "kind": "reply",
    "tool_calls": [{"name": "shell_exec", "arguments": {"command": "echo hi"}}],
}
BARE = """
import httpx, sys
body = {"model": "gpt-4o-mini", "stream": True,
        "messages": [{"role": "user", "content": "hello"}]}
with httpx.Client() as c:
    with c.stream("POST", sys.argv[1] + "/v1/chat/completions", json=body,
                  headers={"Authorization": "Bearer k"}) as r:
        for _ in r.iter_lines():
            pass
"""


def _start_fake(
    script: list[dict[str, object]] | dict[str, object], record: Path
) -> tuple[subprocess.Popen[str], str]:
    path = record.with_suffix(".script.json")
    path.write_text(json.dumps(script))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "oxydra.testing.fake_llm",
            "--port",
            "0",
            "--script",
            str(path),
            "--record",
            str(record),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line.strip().split("=", 1)[1]


PYZ = Path(__file__).resolve().parents[1] / "dist" / "oxydra.pyz"


def _pyz_cmd() -> list[str]:
    """The archive as a user runs it: the base interpreter, isolated (no virtualenv)."""
    return [str(Path(sys.base_prefix) / "bin" / "python3"), "-I", str(PYZ)]


def _ask_cmd(url: str, question: str) -> list[str]:
    sets = [
        f"providers.registry.fake.base_url={url}",
        "providers.registry.fake.provider_type=openai",
        "providers.registry.fake.api_key=k",
        "selection.provider=fake",
    ]
    cmd = [sys.executable, "-m", "oxydra", "ask", question]
    for item in sets:
        cmd += ["--set", item]
    return cmd


def _body(recorded: dict[str, Any]) -> dict[str, Any]:
    """The request body as sent (the fake LLM records it as JSON text)."""
    body = recorded.get("body", recorded)
    return json.loads(body) if isinstance(body, str) else body  # type: ignore[no-any-return]


def _size(body: dict[str, Any]) -> int:
    return len(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())


def _medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def _fig(stats: tuple[float, float], base: tuple[float, float]) -> str:
    wall, cpu = stats
    return (
        f"{wall * 1000:6.1f} ms wall ({wall / base[0]:.2f}x), "
        f"{cpu * 1000:6.1f} ms CPU ({cpu / base[1]:.2f}x)"
    )


def fresh_home(tmp: str) -> dict[str, str]:
    """The environment of a benchmarked run: an empty home of its own under `tmp`."""
    home = Path(tmp) / "home"
    home.mkdir()
    return {"HOME": str(home)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = fresh_home(tmp)
        text, call = [TEXT_STEP], TOOL_STEP
        # one round: bare, text turn (source tree, then the archive when it is built), tool
        # turn, tool turn in the jail, bare (interleaved, so a change of the machine's load
        # hits every figure alike); the fake LLM answers in that order
        names = ("bare", "ask", "pyz", "tool", "jail", "shell", "bare")
        if not PYZ.exists():  # `make bench` builds it
            names = tuple(n for n in names if n != "pyz")
        pyz = 1 if "pyz" in names else 0
        script = text * (2 + 2 * pyz) + (text * (2 + pyz) + [call, *text] * 2 + text) * RUNS
        shell = [SHELL_STEP, TEXT_STEP] * (RUNS + 1)
        record = Path(tmp) / "requests.jsonl"
        conversations = {"default": script, SHELL_CONVERSATION: shell}
        proc, url = _start_fake({"conversations": conversations}, record)
        rounds: dict[str, list[tuple[float, float]]] = {}
        commands = {
            "bare": [sys.executable, "-c", BARE, url],
            "ask": _ask_cmd(url, "hello"),
            "pyz": [*_pyz_cmd(), *_ask_cmd(url, "hello")[3:]],
            "tool": _ask_cmd(url, "write a file"),
            "jail": [*_ask_cmd(url, "write a file"), "--set", "tools.isolation=process"],
            "shell": [
                *_ask_cmd(url, "run echo"),
                "--set",
                f"providers.registry.fake.extra_headers.x-fake-conversation={SHELL_CONVERSATION}",
            ],
        }
        try:
            run_median(_ask_cmd(url, "warm the page cache"), 2, env)
            if pyz:
                run_median(commands["pyz"], 2, env)  # unpacks what a turn imports
            run_median(commands["shell"], 1, env)  # starts nothing that stays: a first run
            for _ in range(RUNS):
                for name in names:
                    rounds.setdefault(name, []).append(run_stats(commands[name], 1, env))
        finally:
            proc.terminate()
            proc.wait()
        names = ("bare", "ask", "tool", "jail", "shell")
        bare, ask, tool, jail, shell_turn = (_medians(rounds[n]) for n in names)
        base = bare
        bodies = [_body(json.loads(line)) for line in record.read_text().splitlines()]
        ours = [b for b in bodies if "tools" in b]
        text_size = min(_size(b) for b in ours)  # a text turn's call: the smallest
        # the last file tool turn's second call: the one whose history holds the call
        tool_size = [_size(b) for b in ours if "file_write" in json.dumps(b["messages"])][-1]
    print(f"bare httpx streaming request, fresh process: {_fig(base, base)}")
    print(f"ask, text turn:                              {_fig(ask, base)}")
    if "pyz" in rounds:
        print(f"  same, from oxydra.pyz (base python -I):    {_fig(_medians(rounds['pyz']), base)}")
    print(
        f"ask, one tool call (2 model calls):          {_fig(tool, base)}"
        " (file tool in the WASM guest; compiled once, then loaded from the user cache)"
    )
    print(f"  same, file tool in the in-process jail:    {_fig(jail, base)}")
    print(f"ask, one shell_exec call (2 model calls):    {_fig(shell_turn, base)} (confined shell)")
    print(f"request body of a text turn (prompt + tools): {text_size / 1000:6.2f} KB")
    print(f"  a tool turn's second call (+ call, result): {tool_size / 1000:6.2f} KB")
    print("(wall / CPU of the process tree: medians of interleaved rounds; ratios to the bare")
    print(f" request's; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})")
    os.environ.pop("OXYDRA_BENCH", None)
