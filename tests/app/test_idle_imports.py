"""An idle `vm` has not loaded what only a turn or a tool uses (issue 25: idle RSS).

httpx and httpcore (with the standard library's `http.client`, `email` and `urllib.request`
they pull in) were ~5 MiB of an idle server's 40; the HTML converter's entity table, difflib
and gzip a few hundred KiB more; h11, which the provider's own HTTP client frames requests
with, 0.5 MiB. A real `vm` is started; once it writes its endpoint marker,
a thread in it lists the modules loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, os, runpy, sys, threading, time
marker, out = sys.argv[1], sys.argv[2]
def watch():
    while not os.path.exists(marker):
        time.sleep(0.05)
    time.sleep(0.5)
    with open(out, "w") as fh:
        json.dump(sorted(sys.modules), fh)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
sys.argv = ["oxydra", *sys.argv[3:]]
runpy.run_module("oxydra", run_name="__main__", alter_sys=True)
"""
NOT_AT_IDLE = {
    "httpx",
    "httpcore",
    "http.client",
    "email.parser",
    "urllib.request",
    "html.entities",
    "difflib",
    "gzip",
    "h11",
}


def test_an_idle_vm_has_not_loaded_the_http_client(tmp_path: Path) -> None:
    workspace, out = tmp_path / "ws", tmp_path / "modules.json"
    args = ["vm", "--user-id", "idle", "--workspace-root", str(workspace)]
    for item in (
        "providers.registry.fake.base_url=https://llm.invalid/v1",
        "providers.registry.fake.provider_type=openai",
        "providers.registry.fake.api_key=k",
        "selection.provider=fake",
        "catalog.skip_catalog_validation=true",
    ):
        args += ["--set", item]
    env = {
        "HOME": str(tmp_path),
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "OXYDRA__GATEWAY__AUTH_TOKEN": "idle-token-0123456789abcdef",
    }
    marker = workspace / "ipc" / "gateway-endpoint"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(marker), str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and out.exists(), done.stderr
    loaded = set(json.loads(out.read_text()))
    assert "oxydra.gateway.server" in loaded  # it is the serving vm
    assert not NOT_AT_IDLE & loaded, sorted(NOT_AT_IDLE & loaded)
