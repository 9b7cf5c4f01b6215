"""The Telegram channel: added latency, crash safety under kill -9, many chats at once.

All against the loopback fake Bot API (`oxydra.testing.fake_telegram`), so the figures are
our own cost, not Telegram's.

1. Latency (in process: real gateway core and store, a scripted model): update injected →
   the first `sendMessage` (the working message); the model's first token → the first
   `editMessageText` showing it. Target: ≤ 20 ms over the model's first token.
2. Crash safety: a real `vm` is killed with SIGKILL at a random moment after each of N
   messages (N restarts), then allowed to finish. Lost = messages never answered; repeated =
   more chat messages than messages sent. Target 0/0.
3. Throughput: 100 chats (100 people) each send one message at once through one `vm` with
   the fake LLM; wall time until all 100 are answered.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from bench._timing import percentile

TOKEN = "4242:bench-token"
WORKING = "⏳ Working…"


async def _latency(tmp: Path, runs: int = 30) -> None:
    from oxydra.core.stream import StreamItem
    from oxydra.testing.mock_provider import MockProvider, reply
    from tests.channels.support import ALICE, rig

    first_token: list[float] = []

    class Timed(MockProvider):
        async def stream(self, context: Any) -> AsyncGenerator[StreamItem, None]:
            async for item in super().stream(context):
                if len(first_token) < len(self.contexts):
                    first_token.append(time.perf_counter())
                yield item

    provider = Timed([reply(f"answer {i}") for i in range(runs)])
    to_working, to_edit = [], []
    async with rig(tmp, provider=provider, edit_every_secs=1.5) as r:
        fake = r.fake
        for i in range(runs):
            before = len(fake.sent[ALICE])
            started = time.perf_counter()
            fake.user_message(f"question {i}", user_id=ALICE)
            await fake.wait_for(lambda f, n=before: len(f.sent[ALICE]) > n)
            to_working.append(time.perf_counter() - started)
            message = fake.sent[ALICE][-1]
            await fake.wait_for(lambda f, m=message: m.edits >= 1)
            to_edit.append(time.perf_counter() - first_token[i])
            # the final edit is HTML (streaming edits are plain): the turn is over
            await fake.wait_for(lambda f, m=message: m.parse_mode == "HTML")
    ms = [x * 1000 for x in to_working]
    edit = [x * 1000 for x in to_edit]
    print(
        f"  update -> working message: median {statistics.median(ms):.1f} ms, "
        f"p95 {percentile(ms, 95):.1f} ms ({runs} messages)"
    )
    print(
        f"  model's first token -> first edit: median {statistics.median(edit):.1f} ms, "
        f"p95 {percentile(edit, 95):.1f} ms"
    )


def _user_toml(base: str, senders: list[int]) -> str:
    lines = [
        "[channels.telegram]",
        "enabled = true",
        'bot_token_env = "BOT_TOKEN"',
        "polling_timeout_secs = 2",
        f'api_base_url = "{base}"',
    ]
    for sender in senders:
        lines += ["", "[[channels.telegram.senders]]", f'platform_ids = ["{sender}"]']
    return "\n".join(lines) + "\n"


def _vm(tmp: Path, llm_url: str, base: str, senders: list[int]) -> subprocess.Popen[bytes]:
    (tmp / "user.toml").write_text(_user_toml(base, senders))
    sets = [
        f"providers.registry.fake.base_url={llm_url}",
        "providers.registry.fake.provider_type=openai",
        "providers.registry.fake.api_key=k",
        "selection.provider=fake",
    ]
    cmd = [sys.executable, "-m", "oxydra", "vm", "--user-id", "bench", "--workspace-root",
           str(tmp / "ws"), "--user-config", str(tmp / "user.toml")]  # fmt: skip
    for item in sets:
        cmd += ["--set", item]
    env = {"HOME": str(tmp), "PATH": os.environ.get("PATH", ""), "BOT_TOKEN": TOKEN}
    with open(tmp / "vm.err", "ab") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)


async def _kills(tmp: Path, rounds: int) -> None:
    from oxydra.testing.fake_llm import FakeLLM, Reply
    from oxydra.testing.fake_telegram import FakeTelegram

    chat = 501
    rng = random.Random(7)
    async with FakeLLM() as llm, FakeTelegram(TOKEN) as fake:
        llm.add([Reply(text="answer " * 30, chunk=8, delay=0.01)] * (rounds * 3))
        started = time.perf_counter()
        for _ in range(rounds):
            proc = _vm(tmp, llm.base_url, fake.base_url, [chat])
            fake.user_message("hello", user_id=chat)
            await asyncio.sleep(rng.uniform(0.5, 3.0))  # startup is ~1 s: kill before or after
            proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(proc.wait)
        proc = _vm(tmp, llm.base_url, fake.base_url, [chat])

        def settled(f: FakeTelegram) -> bool:
            texts = f.texts(chat)
            return sum(t.startswith("answer") for t in texts) >= rounds and WORKING not in texts

        try:
            await fake.wait_for(settled, timeout=300)
        except TimeoutError:
            pass
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait)
        texts = fake.texts(chat)
        answered = sum(1 for t in texts if t.startswith("answer"))
        lost, repeated = max(0, rounds - answered), max(0, answered - rounds)
        notes = sum("still working" in t for t in texts)
        print(
            f"  kill -9 x{rounds}: messages {rounds}, answered {answered}, lost {lost}, "
            f"repeated {repeated}, left 'working' {texts.count(WORKING)}, busy notes {notes} "
            f"({time.perf_counter() - started:.0f} s)"
        )


async def _throughput(tmp: Path, chats: int = 100) -> None:
    from oxydra.testing.fake_llm import FakeLLM, Reply
    from oxydra.testing.fake_telegram import FakeTelegram

    senders = list(range(10_000, 10_000 + chats))
    async with FakeLLM() as llm, FakeTelegram(TOKEN) as fake:
        llm.add([Reply(text="fine, thanks " * 10, chunk=16)] * chats)
        proc = _vm(tmp, llm.base_url, fake.base_url, senders)
        try:
            await fake.wait_for(lambda f: f.polls_started > 0, timeout=60)
            started = time.perf_counter()
            for sender in senders:
                fake.user_message("how are you?", user_id=sender)

            def done(f: FakeTelegram) -> bool:
                return all(f.sent[s] and f.sent[s][0].text.startswith("fine") for s in senders)

            await fake.wait_for(done, timeout=600)
            took = time.perf_counter() - started
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait)
        print(f"  {chats} chats at once: all answered in {took:.2f} s ({chats / took:.1f}/s)")


def main() -> None:
    rounds = int(os.environ.get("BENCH_KILLS", "50"))
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        with tempfile.TemporaryDirectory() as c:
            asyncio.run(_latency(Path(a)))
            asyncio.run(_throughput(Path(c)))
            asyncio.run(_kills(Path(b), rounds))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
