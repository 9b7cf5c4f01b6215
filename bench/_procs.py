"""Processes the benches start: the scripted fake LLM, and a tidy stop for any of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def start_fake_llm(tmp: Path, steps: list[dict[str, object]]) -> tuple[subprocess.Popen[str], str]:
    """Start the fake LLM on a free loopback port with `steps`; return it and its URL."""
    script = tmp / "script.json"
    script.write_text(json.dumps(steps))
    proc = subprocess.Popen(
        [sys.executable, "-m", "oxydra.testing.fake_llm", "--port", "0", "--script", str(script)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip().split("=", 1)[1]


def stop(*procs: subprocess.Popen[str]) -> None:
    """Terminate each process and reap it, in order."""
    for proc in procs:
        proc.terminate()
        proc.wait()
