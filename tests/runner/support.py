"""Running `oxydra runner` as a user would: real subprocesses, a private HOME, a fake LLM."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def parse_kv(text: str) -> dict[str, list[str]]:
    """`key=value` lines → {key: [values...]} (keys such as `warning` repeat)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out.setdefault(key, []).append(value)
    return out


@dataclass
class Sandbox:
    """A working directory and HOME for one test's runner."""

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "oxydra"])
    """How Oxydra is run: from source by default, or `python -I oxydra.pyz`."""

    @property
    def home(self) -> Path:
        return Path(self.env["HOME"])

    def workspace(self, user: str = "default") -> Path:
        return self.home / ".oxydra" / "workspaces" / user

    def runner(
        self, *args: str, timeout: float = 90, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """`oxydra runner ARGS` in this sandbox."""
        return subprocess.run(
            [*self.command, "runner", *args],
            cwd=self.cwd,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def make_sandbox(tmp_path: Path, **env: str) -> Sandbox:
    home = tmp_path / "home"
    home.mkdir()
    cwd = tmp_path / "project"
    cwd.mkdir()
    base = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "LANG": "C.UTF-8",
    }
    return Sandbox(cwd=cwd, env={**base, **env})


@contextlib.contextmanager
def fake_llm(tmp_path: Path, steps: list[dict[str, Any]]) -> Iterator[tuple[str, Path]]:
    """A fake LLM subprocess; yields its base URL and the file of recorded requests."""
    script = tmp_path / "script.json"
    script.write_text(json.dumps(steps))
    record = tmp_path / "requests.jsonl"
    argv = [sys.executable, "-m", "oxydra.testing.fake_llm", "--port", "0"]
    argv += ["--script", str(script), "--record", str(record), "--strict"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("FAKE_LLM_URL="), line
        yield line.strip().split("=", 1)[1], record
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def provider_env(url: str) -> dict[str, str]:
    """Point the guest at the fake LLM through `OXYDRA__...` variables."""
    return {
        "OXYDRA__SELECTION__PROVIDER": "fake",
        "OXYDRA__SELECTION__MODEL": "fake-model",
        "OXYDRA__PROVIDERS__REGISTRY__FAKE__PROVIDER_TYPE": "openai",
        "OXYDRA__PROVIDERS__REGISTRY__FAKE__BASE_URL": url,
        "OXYDRA__CATALOG__SKIP_CATALOG_VALIDATION": "true",
        "API_KEY": "test-key-not-secret",
    }
