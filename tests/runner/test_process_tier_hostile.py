"""The process tier against a hostile model (issue 12 item 2): the attacks, end to end.

A real `runner start --insecure`, a scripted fake LLM telling the guest's shell to read the
gateway token, open the memory database and the credentials, ask the runner control socket
for `shutdown_user`, and leave a `setsid -f` helper behind; then `runner stop` during a call.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from oxydra.security._landlock import landlock_abi
from oxydra.wire.gateway import (
    PROTOCOL_VERSION,
    Hello,
    HelloAck,
    SendTurn,
    TurnCompleted,
    TurnStarted,
    decode_server_frame,
    encode_frame,
)
from tests.runner.support import Sandbox, fake_llm, make_sandbox, parse_kv, provider_env

pytestmark = pytest.mark.skipif(landlock_abi()[0] <= 0, reason="this kernel has no Landlock")

CONTROL_CLIENT = r"""
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
body = json.dumps({"op": "shutdown_user", "payload": {"user_id": "default"}}).encode()
try:
    s.sendall(struct.pack(">I", len(body)) + body)
except OSError as exc:
    print("send failed:", exc)
print("control answered:", s.recv(4096)[4:].decode())
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _gone_within(pid: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    return not _alive(pid)


async def send_turn(endpoint: str, token: str, wait: bool = True) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(endpoint, additional_headers=headers) as ws:
        hello = Hello(request_id="h", protocol_version=PROTOCOL_VERSION, user_id="default")
        await ws.send(encode_frame(hello).decode())
        ack = decode_server_frame(await asyncio.wait_for(ws.recv(), 20))
        assert isinstance(ack, HelloAck)
        turn = SendTurn(
            request_id="t", session_id=ack.session.session_id, turn_id=uuid.uuid4().hex, prompt="go"
        )
        await ws.send(encode_frame(turn).decode())
        while True:  # without waiting: until the gateway has taken the turn
            frame = decode_server_frame(await asyncio.wait_for(ws.recv(), 60))
            if isinstance(frame, TurnCompleted):
                return frame.response.message.content or ""
            if not wait and isinstance(frame, TurnStarted):
                return ""


def shell_step(command: str) -> dict[str, object]:
    call = {"name": "shell_exec", "arguments": {"command": command}}
    return {"kind": "reply", "tool_calls": [call]}


@pytest.fixture
def box(tmp_path: Path) -> Iterator[tuple[Sandbox, str, str, Path]]:
    ws = tmp_path / "home" / ".oxydra" / "workspaces" / "default"
    attack = " ; ".join(
        [
            f"cat {ws}/ipc/gateway-token",
            f"head -c 16 {ws}/.oxydra/memory.db",
            f"ls {ws}/.oxydra {ws}/ipc",
            f"cat {tmp_path}/home/.oxydra/providers.toml",
            f"(cd {ws}/ipc && python3 -c '{CONTROL_CLIENT}' runner-control.sock)",
            "setsid -f sh -c 'echo $$ > helper.pid; exec sleep 300'",
            "sleep 0.3; echo attack-done",
        ]
    )
    steps = [
        shell_step(attack),
        {"kind": "reply", "text": "first done"},
        shell_step("setsid -f sh -c 'echo $$ > stopper.pid; exec sleep 300'; sleep 300"),
        {"kind": "reply", "text": "never"},
    ]
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".oxydra").mkdir()
    creds = tmp_path / "home" / ".oxydra" / "providers.toml"
    creds.write_text(
        '[providers.registry.spare]\nprovider_type = "openai"\napi_key = "sk-cred-77"\n'
    )
    with fake_llm(tmp_path, steps) as (url, record):
        sandbox = make_sandbox_in(tmp_path, **provider_env(url))
        out = sandbox.runner("--insecure", "start")
        try:
            assert out.returncode == 0, out.stderr
            endpoint = parse_kv(out.stdout)["gateway_endpoint"][0]
            token = (sandbox.workspace() / "ipc" / "gateway-token").read_text().strip()
            yield sandbox, endpoint, token, record
        finally:
            sandbox.runner("stop")


def make_sandbox_in(tmp_path: Path, **env: str) -> Sandbox:
    """`make_sandbox` with a HOME that already holds a credentials file."""
    home = tmp_path / "home"
    home.rename(tmp_path / "home.pre")
    box = make_sandbox(tmp_path, **env)
    (box.home / ".oxydra").rmdir() if (box.home / ".oxydra").exists() else None
    (tmp_path / "home.pre" / ".oxydra").rename(box.home / ".oxydra")
    return box


def test_the_guest_shell_reaches_nothing_outside_shared_and_tmp(box: tuple) -> None:
    sandbox, endpoint, token, record = box
    assert asyncio.run(send_turn(endpoint, token)) == "first done"
    posts = [json.loads(ln) for ln in record.read_text().splitlines()]
    posts = [p for p in posts if p["method"] == "POST"]  # not the model-list probe
    body = json.loads(posts[1]["body"])
    result = next(m["content"] for m in body["messages"] if m["role"] == "tool")
    assert "attack-done" in result
    assert token not in result
    assert "SQLite format" not in result
    assert "sk-cred-77" not in result
    assert result.count("cannot open directory") == 2  # neither .oxydra/ nor ipc/ lists
    assert result.count("Permission denied") >= 5
    assert "control answered" in result and "forbidden" in result
    status = parse_kv(sandbox.runner("status").stdout)
    assert status["healthy"] == ["true"]  # the shutdown_user it sent was refused
    helper = int((sandbox.workspace() / "shared" / "helper.pid").read_text())
    assert _gone_within(helper)


def test_no_helper_survives_runner_stop_mid_call(box: tuple) -> None:
    sandbox, endpoint, token, _ = box
    assert asyncio.run(send_turn(endpoint, token)) == "first done"
    asyncio.run(send_turn(endpoint, token, wait=False))
    marker = sandbox.workspace() / "shared" / "stopper.pid"
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    helper = int(marker.read_text())
    assert _alive(helper)
    out = sandbox.runner("stop")
    assert out.returncode == 0, out.stderr
    assert _gone_within(helper)
