"""Isolation tiers on the real thing: start (cold, warm), a turn's latency, idle memory, stop.

Run from the repository root as root, with a Docker engine: `DOCKER_HOST=unix:///... python
-m bench tiers`. Builds `oxydra.pyz` and the guest image (`runner image build --no-disk`),
then for the process and container tiers, from the archive, in a throwaway project:
1. `runner start` wall time, twice (cold: first start after the image was loaded; warm:
   the next one), each returning once the gateway answers its marker;
2. the median of 5 one-reply turns through the gateway (a fake LLM on loopback), whose
   difference to the process tier is the tier's added latency;
3. the guest's memory at idle: the runtime's RSS (process), or the engine's usage of both
   containers (container);
4. `runner stop` wall time.
The micro_vm tier is not measured: this machine's KVM (kvm-pvm) does not boot a Linux
kernel (docs/runner.md). Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TURNS = 5


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[-2:])} failed:\n{done.stdout}{done.stderr}")
    return time.perf_counter() - start, done.stdout


async def _turn(endpoint: str, token: str) -> float:
    from websockets.asyncio.client import connect

    from oxydra.wire.gateway import (
        PROTOCOL_VERSION,
        Hello,
        HelloAck,
        SendTurn,
        TurnCompleted,
        decode_server_frame,
        encode_frame,
    )

    headers = {"Authorization": f"Bearer {token}"}
    async with connect(endpoint, additional_headers=headers) as ws:
        await ws.send(encode_frame(Hello(request_id="h", protocol_version=PROTOCOL_VERSION,
                                         user_id="default")).decode())  # fmt: skip
        ack = decode_server_frame(await ws.recv())
        assert isinstance(ack, HelloAck)
        turn_id = uuid.uuid4().hex
        start = time.perf_counter()
        await ws.send(encode_frame(SendTurn(request_id="t", session_id=ack.session.session_id,
                                            turn_id=turn_id, prompt="hi")).decode())  # fmt: skip
        while True:
            frame = decode_server_frame(await ws.recv())
            if isinstance(frame, TurnCompleted) and frame.turn.turn_id == turn_id:
                return time.perf_counter() - start


def _memory(tier: str, lines: str, docker_host: str) -> float:
    if tier == "process":
        pid = next(
            ln.split("=", 1)[1] for ln in lines.splitlines() if ln.startswith("runtime_pid=")
        )
        status = Path(f"/proc/{pid}/status").read_text()
        return (
            int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS"))) / 1024
        )
    import docker

    client = docker.DockerClient(base_url=docker_host)
    try:
        found = client.containers.list(filters={"label": "oxydra.user_id=default"})
        return sum(c.stats(stream=False)["memory_stats"]["usage"] for c in found) / 2**20
    finally:
        client.close()


def measure(tier: str, pyz: Path, docker_host: str, llm_url: str) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix=f"oxydra-bench-{tier}-"))
    project = home / "project"
    (project / ".oxydra").mkdir(parents=True)
    (project / ".oxydra" / "runner.toml").write_text(
        f'default_tier = "{tier}"\nworkspace_root = "ws"\n'
    )
    env = {
        "HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DOCKER_HOST": docker_host, "API_KEY": "bench",
        "OXYDRA__SELECTION__PROVIDER": "bench", "OXYDRA__SELECTION__MODEL": "bench-model",
        "OXYDRA__PROVIDERS__REGISTRY__BENCH__PROVIDER_TYPE": "openai",
        "OXYDRA__PROVIDERS__REGISTRY__BENCH__BASE_URL": llm_url,
        "OXYDRA__CATALOG__SKIP_CATALOG_VALIDATION": "true",
    }  # fmt: skip
    runner = [
        sys.executable,
        "-I",
        str(pyz),
        "runner",
        *(["--insecure"] if tier == "process" else []),
    ]
    figures: dict[str, float] = {}
    for label in ("cold", "warm"):
        figures[f"start_{label}_s"], lines = _run([*runner, "start"], env, project)
        if label == "cold":
            figures["stop_s"], _ = _run([*runner, "stop"], env, project)
    ws = project / ".oxydra" / "ws" / "default"
    endpoint = (ws / "ipc" / "gateway-endpoint").read_text().strip()
    token = (ws / "ipc" / "gateway-token").read_text().strip()
    times = [asyncio.run(_turn(endpoint, token)) for _ in range(TURNS)]
    figures["turn_median_s"] = statistics.median(times)
    time.sleep(2)  # idle
    figures["idle_memory_mib"] = _memory(tier, lines, docker_host)
    _run([*runner, "stop"], env, project)
    return figures


def main() -> None:
    docker_host = os.environ.get("DOCKER_HOST")
    if not docker_host or os.geteuid() != 0:
        print("tiers: skipped (needs root and DOCKER_HOST pointing at a Docker engine)")
        return
    with tempfile.TemporaryDirectory(prefix="oxydra-bench-tiers-") as tmp:
        pyz = Path(tmp) / "oxydra.pyz"
        subprocess.run([sys.executable, str(ROOT / "build_pyz.py"), "--output", str(pyz)],
                       check=True, capture_output=True)  # fmt: skip
        cache = os.environ.get("OXYDRA_GUEST_CACHE", "/var/tmp/oxydra-guest-cache")
        env = {**os.environ, "OXYDRA_GUEST_CACHE": cache}
        took, _ = _run([sys.executable, "-I", str(pyz), "runner", "image", "build", "--no-disk"],
                       env, Path(tmp))  # fmt: skip
        print(f"tiers: runner image build --no-disk (base rootfs cached): {took:.1f} s")
        script = Path(tmp) / "script.json"
        script.write_text(json.dumps([{"kind": "reply", "text": "ok"}] * (TURNS * 2 + 2)))
        llm = subprocess.Popen(
            [sys.executable, "-m", "oxydra.testing.fake_llm", "--port", "0",
             "--script", str(script)],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        try:
            assert llm.stdout is not None
            url = llm.stdout.readline().strip().split("=", 1)[1]
            results: dict[str, Any] = {}
            for tier in ("process", "container"):
                results[tier] = measure(tier, pyz, docker_host, url)
                print(
                    f"tiers: {tier}: " + ", ".join(f"{k}={v:.3f}" for k, v in results[tier].items())
                )
            added = results["container"]["turn_median_s"] - results["process"]["turn_median_s"]
            print(f"tiers: container turn latency over process: {added * 1000:+.1f} ms")
        finally:
            llm.terminate()
            llm.wait()


if __name__ == "__main__":
    main()
