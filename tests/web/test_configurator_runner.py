"""`runner web` as a process starts, reports and stops a real guest (process tier, fake LLM)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from oxydra.security._landlock import landlock_abi
from tests.runner.support import Sandbox, fake_llm, make_sandbox, provider_env

pytestmark = pytest.mark.skipif(landlock_abi()[0] <= 0, reason="these runs expect Landlock")


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[Sandbox, str]]:
    with fake_llm(tmp_path, []) as (url, _):
        box = make_sandbox(tmp_path, **provider_env(url))
        argv = [sys.executable, "-m", "oxydra", "runner", "web", "--insecure"]
        argv += ["--bind", "127.0.0.1:0"]
        proc = subprocess.Popen(argv, cwd=box.cwd, env=box.env, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("web_url="), line
            yield box, line.strip().partition("=")[2]
        finally:
            proc.terminate()
            proc.wait(20)
            assert proc.stdout is not None
            proc.stdout.close()
            box.runner("stop")


def _until(http: httpx.Client, running: bool) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status: dict[str, Any] = http.get("api/v1/status/default").json()["data"]
        if status["running"] is running:
            return status
        time.sleep(0.2)
    raise AssertionError(f"guest never became running={running}: {status}")


def test_start_and_stop_from_the_configurator_drive_the_real_runner(
    web: tuple[Sandbox, str],
) -> None:
    box, url = web
    with httpx.Client(base_url=url, timeout=30) as http:
        csrf = http.get("api/v1/auth/session").json()["data"]["csrf_token"]
        headers = {"Origin": url.rstrip("/"), "X-CSRF-Token": csrf}
        assert http.get("api/v1/status/default").json()["data"]["running"] is False
        res = http.post("api/v1/control/default/start", headers=headers)
        assert res.status_code == 200 and res.json()["data"]["accepted"]
        status = _until(http, True)
        assert status["healthy"] and status["runtime_pid"]
        logs = http.get("api/v1/logs/default?tail=50").json()["data"]
        assert isinstance(logs["entries"], list)
        http.post("api/v1/control/default/stop", headers=headers)
        _until(http, False)
    assert box.workspace().is_dir()
