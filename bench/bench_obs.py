"""Observability: what it costs a turn, what importing the SDK costs, and proof of laziness.

A turn here is fully in process: the strict scripted provider answers with one `file_list`
call, then a 200-word answer streamed in 4-character items, through the real runtime, tool
registry and jail (no HTTP, so the overhead is measured against the smallest turn there is).
Three modes, interleaved round by round so machine noise hits them alike:

* off:    no span hook (what a build without observability would do);
* ledger: the default hook — usage ledger row + span tree stored, Prometheus registry;
* otel:   plus OpenTelemetry export over OTLP/HTTP to a loopback receiver that discards.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench._procs import start_fake_llm

ROUNDS = 15
TURNS = 40
WORDS = " ".join(f"w{i}" for i in range(200))


def _sink_server() -> tuple[ThreadingHTTPServer, str]:
    class Discard(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Discard)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _script(turns: int) -> list[object]:
    from oxydra.core.messages import ToolCall, UsageUpdate
    from oxydra.testing.mock_provider import reply

    usage = UsageUpdate(prompt_tokens=1200, completion_tokens=200)
    call = ToolCall(id="c1", name="file_list", arguments='{"path": "/shared"}')
    steps: list[object] = []
    for _ in range(turns):
        steps += [reply("", call, usage=usage), reply(WORDS, usage=usage)]
    return steps


async def _turns(agent: object, mode: str, start: int, scripted: bool = True) -> list[float]:
    from oxydra.runtime.api import TurnRequest
    from oxydra.testing.mock_provider import MockProvider

    runtime = agent.runtime  # type: ignore[attr-defined]
    if scripted:
        runtime.provider = MockProvider(_script(TURNS))  # type: ignore[arg-type]

    async def sink(_item: object) -> None:
        return None

    times = []
    for i in range(TURNS):
        request = TurnRequest(
            user_id="u", session_id=f"{mode}-{start + i}", turn_id=f"{mode}-{start + i}",
            prompt="list files",
        )  # fmt: skip
        began = time.perf_counter()
        outcome = await runtime.run_turn(request, sink)
        times.append(time.perf_counter() - began)
        assert outcome.ok, outcome.detail
    return times


def _mode(mode: str, tmp: Path, endpoint: str) -> object:
    from oxydra.config.schema import ObservabilityConfig
    from oxydra.observability import start_observability

    if mode == "off":
        return None
    config = ObservabilityConfig(
        enabled=mode == "otel", otlp_endpoint=endpoint, metrics_interval_secs=3600.0
    )
    return start_observability(config, workspace=tmp / mode, environ={})


async def _overhead(tmp: Path, endpoint: str, llm: str | None = None) -> dict[str, float]:
    """Median turn per mode; with `llm`, turns go over HTTP to the loopback fake LLM."""
    from oxydra.config.loader import ConfigSources, load_agent_config
    from oxydra.runtime import build_agent, provision_workspace

    sets = ["tools.isolation=process", "providers.registry.openai.api_key=k"]
    if llm is not None:
        sets += [
            f"providers.registry.fake.base_url={llm}",
            "providers.registry.fake.provider_type=openai",
            "providers.registry.fake.api_key=k",
            "selection.provider=fake",
        ]
    config = load_agent_config(ConfigSources(home=tmp, cwd=tmp, environ={}, overrides=sets))
    agent = build_agent(config.config, workspace=provision_workspace(tmp / "ws"), environ={})
    samples: dict[str, list[float]] = {"off": [], "ledger": [], "otel": []}
    for round_no in range(ROUNDS):
        for mode in samples:
            observability = _mode(mode, tmp, endpoint)
            times = await _turns(agent, mode, round_no * TURNS, scripted=llm is None)
            samples[mode] += times[3:]
            if observability is not None:
                await observability.aclose()  # type: ignore[attr-defined]
    await agent.aclose()
    return {mode: statistics.median(values) for mode, values in samples.items()}


def _import_cost() -> float:
    probe = (
        "import time; t = time.perf_counter(); import oxydra.observability._otel; "
        "import opentelemetry.exporter.otlp.proto.http.trace_exporter, "
        "opentelemetry.exporter.otlp.proto.http.metric_exporter; "
        "print(time.perf_counter() - t)"
    )
    runs = [
        float(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             check=True).stdout)
        for _ in range(5)
    ]  # fmt: skip
    return statistics.median(runs)


def _imports_nothing() -> tuple[str, str]:
    help_probe = (
        "import sys\nfrom oxydra.cli import main\ntry:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    turn_probe = (
        "import asyncio, sys, tempfile\nfrom pathlib import Path\n"
        "from bench.bench_obs import _overhead_off_turn\n"
        "asyncio.run(_overhead_off_turn(Path(tempfile.mkdtemp())))\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = []
    for probe in (help_probe, turn_probe):
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        out.append(done.stdout.strip().splitlines()[-1] if done.stdout else done.stderr[-200:])
    return out[0], out[1]


async def _overhead_off_turn(tmp: Path) -> None:
    """One turn as `vm`/`ask` run it with `[observability] enabled = false` (ledger hook on)."""
    from oxydra.config.loader import ConfigSources, load_agent_config
    from oxydra.runtime import build_agent, provision_workspace

    sets = ["providers.registry.openai.api_key=k"]
    config = load_agent_config(ConfigSources(home=tmp, cwd=tmp, environ={}, overrides=sets))
    observability = _mode("ledger", tmp, "")
    agent = build_agent(config.config, workspace=provision_workspace(tmp / "ws"), environ={})
    global TURNS
    TURNS = 1
    await _turns(agent, "probe", 0)
    await agent.aclose()
    await observability.aclose()  # type: ignore[attr-defined]


def _report(title: str, medians: dict[str, float]) -> None:
    off = medians["off"]
    print(f"{title}, median of {ROUNDS * (TURNS - 3)}:")
    for mode, value in medians.items():
        extra = (value - off) * 1e6
        print(
            f"  {mode:7s} {value * 1000:7.3f} ms  ({(value / off - 1) * 100:+.1f} % vs off, "
            f"{extra:+.0f} µs)"
        )


def _fake(tmp: Path, turns: int) -> tuple[subprocess.Popen[str], str]:
    """The fake LLM in its own process, scripted for `turns` tool round trips."""
    call = {"kind": "reply", "tool_calls": [{"name": "file_list", "arguments": {"path": "/"}}]}
    text = {"kind": "reply", "text": WORDS, "chunk": 4}
    return start_fake_llm(tmp, [call, text] * turns)


def main() -> None:
    server, endpoint = _sink_server()
    try:
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            for sub in ("a", "b"):
                (tmp / sub).mkdir()
            scripted = asyncio.run(_overhead(tmp / "a", endpoint))
            proc, url = _fake(tmp, ROUNDS * 3 * TURNS + 10)
            try:
                http = asyncio.run(_overhead(tmp / "b", endpoint, url))
            finally:
                proc.terminate()
                proc.wait()
    finally:
        server.shutdown()
    _report("in-process turn, scripted provider (tool + 200-word answer)", scripted)
    _report("turn over HTTP to the loopback fake LLM (same exchange)", http)
    print(f"import of the OTel SDK + OTLP/HTTP exporters: {_import_cost() * 1000:.0f} ms")
    help_mods, turn_mods = _imports_nothing()
    print(f"opentelemetry modules after --help: {help_mods}")
    print(f"opentelemetry modules after an observability-off turn: {turn_mods}")
