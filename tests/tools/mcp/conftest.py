"""Fixtures for MCP tests: real servers started as subprocesses, a hub, a call context.

Everything runs on this machine: stdio servers as children, HTTP servers on 127.0.0.1.
The SDK 1.x server runs from its own venv (`.venv/mcp1`, made once from the pip cache),
because 1.x and 2.x share the import name `mcp` and cannot live in one environment.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from oxydra.config.schema import McpConfig, McpServerConfig
from oxydra.security import Workspace
from oxydra.tools import LocalFileBackend, ToolExecutionContext, ToolRegistry
from oxydra.tools.mcp import McpHub

SERVERS = Path(__file__).parent / "servers"
MISBEHAVING = SERVERS / "misbehaving.py"
SDK_SERVER = SERVERS / "sdk_server.py"
BIN = Path(sys.prefix) / "bin"
ROOT = Path(__file__).resolve().parents[3]
MCP1_VENV = ROOT / ".venv" / "mcp1"
MCP1_PIN = "mcp==1.30.0"


def misbehaving(*modes: str, **extra: object) -> McpServerConfig:
    """A server config running our misbehaving server with `modes`."""
    fields: dict[str, object] = {
        "command": sys.executable,
        "args": [str(MISBEHAVING), *modes],
        "read_paths": [str(SERVERS)],
        "startup_timeout_secs": 10.0,
        "timeout_secs": 10.0,
    }
    fields.update(extra)
    return McpServerConfig(**fields)  # type: ignore[arg-type]


@pytest.fixture
def call_ctx(tmp_path: Path) -> ToolExecutionContext:
    """A per-call context over a scratch workspace."""
    root = tmp_path / "ws"
    for sub in ("shared", "tmp", "vault"):
        (root / sub).mkdir(parents=True)
    return ToolExecutionContext(
        user_id="alice", session_id="s1", workspace=LocalFileBackend(Workspace.for_user(root))
    )


@pytest.fixture
async def make_hub(
    tmp_path: Path, sdk_http: Callable[[str, str], str]
) -> AsyncIterator[Callable[..., object]]:
    """Build and start a hub over a fresh registry; every hub is stopped at teardown.

    It asks for `sdk_http` (which starts nothing until called) so that the hubs are stopped
    before the servers: a server stopped first waits out its graceful shutdown for the
    hub's open stream.
    """
    hubs: list[McpHub] = []

    async def build(
        servers: dict[str, McpServerConfig],
        *,
        registry: ToolRegistry | None = None,
        start: bool = True,
        environ: dict[str, str] | None = None,
        **settings: object,
    ) -> McpHub:
        config = McpConfig(servers=servers, **settings)  # type: ignore[arg-type]
        hub = McpHub(
            config,
            registry if registry is not None else ToolRegistry(),
            environ=environ if environ is not None else dict(os.environ),
            state_dir=tmp_path / "mcp",
        )
        hubs.append(hub)
        if start:
            await hub.start()
        return hub

    yield build
    for hub in hubs:
        await hub.stop()


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(
    port: int, process: subprocess.Popen[bytes], log: Path, seconds: float = 30
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"SDK server exited: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("SDK server did not listen in time")


@pytest.fixture
def sdk_http(tmp_path: Path) -> Iterator[Callable[[str, str], str]]:
    """Start the SDK fixture server: `(python, transport) -> url`; stopped at teardown."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(python: str, transport: str, port: int | None = None) -> str:
        port = port or free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        log = tmp_path / f"sdk-{port}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [python, str(SDK_SERVER), transport, str(port), str(tmp_path)],
                stdout=subprocess.DEVNULL,
                stderr=sink,
                env=env,
            )
        processes.append(process)
        _wait_for_port(port, process, log)
        path = "/sse" if transport == "sse" else "/mcp"
        return f"http://127.0.0.1:{port}{path}"

    start.processes = processes  # type: ignore[attr-defined]
    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def mcp1_python() -> str:
    """The interpreter of a venv holding the SDK 1.x line (made once, from the pip cache)."""
    python = MCP1_VENV / "bin" / "python"
    stamp = MCP1_VENV / ".installed"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", str(MCP1_VENV)], check=True)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", MCP1_PIN],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(
                f"cannot install {MCP1_PIN} (offline without a pip cache?): {done.stderr[-300:]}"
            )
        stamp.touch()
    return str(python)
