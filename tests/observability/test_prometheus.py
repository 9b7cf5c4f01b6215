"""The `vm`'s metrics endpoint scraped by a real Prometheus, answering PromQL.

Prometheus (Debian's `prometheus`, installed by .ci/run) runs on loopback with a scrape
config naming the endpoint the `vm` wrote to `ipc/metrics-endpoint`; no OTel SDK involved.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from oxydra.core.errors import ConfigError
from oxydra.observability._prom_http import MetricsServer
from oxydra.testing.fake_llm import Call, FakeLLM, Reply
from oxydra.testing.fake_llm import Usage as FakeUsage
from oxydra.wire import gateway as g
from tests.gateway.support import VmProcess, client, send, terminal, until

PROMETHEUS = shutil.which("prometheus")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def promql(web: str, query: str, want: float, attempts: int = 150) -> float | None:
    """Poll Prometheus until `query` answers `want` (scrapes run every second)."""
    seen: float | None = None
    async with httpx.AsyncClient() as http:
        for _ in range(attempts):
            try:
                answer = await http.get(f"{web}/api/v1/query", params={"query": query})
            except httpx.TransportError:
                answer = None
            # 503 "Service Unavailable" until the TSDB is open
            reply = answer.json() if answer is not None and answer.status_code == 200 else {}
            result = reply.get("data", {}).get("result", [])
            if result:
                seen = float(result[0]["value"][1])
                if seen == want:
                    return seen
            await asyncio.sleep(0.2)
    return seen


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (see .ci/run)")
async def test_prometheus_scrapes_the_vm_and_answers_the_token_query(tmp_path: Path) -> None:
    script = [
        Reply(
            tool_calls=[Call(name="file_write", arguments={"path": "/shared/a", "content": "1"})],
            usage=FakeUsage(prompt_tokens=700, completion_tokens=11),
        ),
        Reply(text="ok", usage=FakeUsage(prompt_tokens=800, completion_tokens=3)),
    ]
    async with FakeLLM(script) as llm:
        vm = VmProcess(tmp_path, llm.base_url)
        endpoint = await vm.start()
        try:
            ws, ack = await client(endpoint)
            assert ack.session is not None
            turn = g.SendTurn(
                request_id="r", session_id=ack.session.session_id, turn_id=uuid.uuid4().hex,
                prompt="go",
            )  # fmt: skip
            await send(ws, turn)
            await until(ws, terminal)
            metrics_url = (vm.workspace / "ipc" / "metrics-endpoint").read_text().strip()
            target = metrics_url.removeprefix("http://").removesuffix("/metrics")
            web = await _prometheus(tmp_path, target)
            try:
                query = 'sum(gen_ai_client_token_usage_sum{gen_ai_token_type="input"})'
                assert await promql(web, query, 1500) == 1500
                tools = 'oxydra_tool_calls_total{gen_ai_tool_name="file_write",outcome="ok"}'
                assert await promql(web, tools, 1) == 1
                assert await promql(web, "oxydra_active_sessions", 1) == 1
            finally:
                await _stop(web)
            await ws.close()
        finally:
            await vm.stop()


_RUNNING: dict[str, subprocess.Popen[bytes]] = {}


async def _prometheus(tmp: Path, target: str) -> str:
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: oxydra\n    scrape_interval: 1s\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    assert PROMETHEUS is not None
    with (tmp / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=log,
        )
    web = f"http://127.0.0.1:{port}"
    _RUNNING[web] = proc
    return web


async def _stop(web: str) -> None:
    proc = _RUNNING.pop(web)
    proc.terminate()
    await asyncio.to_thread(proc.wait, 20)


class TestTokenProtection:
    async def test_a_non_loopback_bind_needs_a_token(self) -> None:
        with pytest.raises(ConfigError, match="metrics_bind"):
            await MetricsServer(lambda: "x 1\n").start("0.0.0.0:0")

    async def test_a_non_loopback_endpoint_answers_only_the_bearer(self) -> None:
        server = MetricsServer(lambda: "oxydra_up 1\n", token="s3cret-token")
        _, port = await server.start("0.0.0.0:0")
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            async with httpx.AsyncClient() as http:
                assert (await http.get(url)).status_code == 401
                wrong = {"Authorization": "Bearer nope"}
                assert (await http.get(url, headers=wrong)).status_code == 401
                good = await http.get(url, headers={"Authorization": "Bearer s3cret-token"})
                assert good.status_code == 200 and good.text == "oxydra_up 1\n"
                assert (await http.get(url.replace("/metrics", "/"))).status_code == 404
        finally:
            await server.close()

    async def test_an_oversized_request_head_is_refused(self) -> None:
        server = MetricsServer(lambda: "x 1\n")
        _, port = await server.start("127.0.0.1:0")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n")
            await writer.drain()
            status = await reader.readline()
            writer.close()
            assert status.startswith(b"HTTP/1.1 400")
        finally:
            await server.close()
