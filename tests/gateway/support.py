"""Helpers for gateway tests: a real `vm` subprocess and a plain WebSocket client."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from oxydra.wire import gateway as g

TOKEN = "test-token-0123456789abcdef"
START_TIMEOUT = 120.0


class VmProcess:
    """`oxydra vm` for one user, configured to use the fake LLM at `llm_url`."""

    def __init__(
        self,
        tmp: Path,
        llm_url: str,
        user: str = "alice",
        extra: list[str] | None = None,
        bind: str | None = None,
    ) -> None:
        self.tmp, self.user = tmp, user
        self.workspace = tmp / "ws" / user
        self.marker = self.workspace / "ipc" / "gateway-endpoint"
        sets = [
            f"providers.registry.fake.base_url={llm_url}",
            "providers.registry.fake.provider_type=openai",
            "providers.registry.fake.api_key=k",
            "selection.provider=fake",
            *(extra or []),
        ]
        self.cmd = [
            sys.executable,
            "-m",
            "oxydra",
            "vm",
            "--user-id",
            user,
            "--workspace-root",
            str(self.workspace),
        ]
        for item in sets:
            self.cmd += ["--set", item]
        if bind is not None:
            self.cmd += ["--gateway-bind", bind]
        self.env = {
            "HOME": str(tmp / "home"),
            "PATH": os.environ.get("PATH", ""),
            "OXYDRA__GATEWAY__AUTH_TOKEN": TOKEN,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> str:
        if self.marker.exists():
            self.marker.unlink()
        with open(self.tmp / "vm.err", "ab") as err:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=err
            )
        # The marker is written atomically once the gateway listens; the deadline only
        # bounds a hang (a loaded machine can take many seconds to start the process).
        deadline = time.monotonic() + START_TIMEOUT
        while not self.marker.exists():
            if self.proc.poll() is not None:
                raise AssertionError("vm exited: " + (self.tmp / "vm.err").read_text())
            if time.monotonic() > deadline:
                raise AssertionError("vm did not write its endpoint marker")
            await asyncio.sleep(0.05)
        return self.marker.read_text().strip()

    async def stop(self) -> int:
        """Terminate and wait without blocking the loop: clients living in this loop must be
        able to answer the vm's closing handshakes, or it waits out their close timeouts."""
        assert self.proc is not None
        self.proc.terminate()
        return await asyncio.to_thread(self.proc.wait, 60)


async def client(
    endpoint: str,
    *,
    token: str = TOKEN,
    user: str = "alice",
    sock: Any = None,
    max_queue: int = 16,
    max_size: int | None = 2**20,
    **hello: Any,
) -> tuple[ClientConnection, g.HelloAck]:
    ws = await connect(
        endpoint,
        additional_headers={"Authorization": f"Bearer {token}"},
        sock=sock,
        max_queue=max_queue,
        max_size=max_size,
    )
    hello.setdefault("request_id", uuid.uuid4().hex)
    await send(ws, g.Hello(protocol_version=2, user_id=user, **hello))
    ack = await recv(ws)
    assert isinstance(ack, g.HelloAck), ack
    return ws, ack


async def send(ws: ClientConnection, frame: Any) -> None:
    await ws.send(g.encode_frame(frame).decode())


async def recv(ws: ClientConnection, timeout: float = 60) -> Any:
    return g.decode_server_frame(await asyncio.wait_for(ws.recv(), timeout))


async def until(
    ws: ClientConnection, done: Callable[[Any], bool], timeout: float = 60
) -> list[Any]:
    frames: list[Any] = []
    while True:
        frame = await recv(ws, timeout)
        frames.append(frame)
        if done(frame):
            return frames


def terminal(frame: Any) -> bool:
    return isinstance(frame, g.TurnCompleted | g.TurnCancelled) or (
        isinstance(frame, g.ErrorFrame) and frame.turn is not None
    )


def turn(session_id: str, prompt: str, turn_id: str | None = None) -> g.SendTurn:
    return g.SendTurn(
        request_id=uuid.uuid4().hex,
        session_id=session_id,
        turn_id=turn_id or uuid.uuid4().hex,
        prompt=prompt,
    )
