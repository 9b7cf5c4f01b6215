"""Sessions: recall latency over 1,000 stored sessions, and what a background child's
bookkeeping costs.

* recall: 1,000 sessions of one person, 4 messages each (4,000 indexed messages, hashed
  embedder: the figure is the store's search and the session lookups, not a model's
  embedding); 200 `session_search` calls; p50 / p99.
* background bookkeeping: 200 background jobs whose child returns at once: storing the job,
  recording the child session, marking it done and delivering the report into the parent
  session (one append); mean per job. The model's own calls are not in it.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench._timing import percentile
from oxydra.config.schema import RuntimeConfig
from oxydra.core.messages import Message
from oxydra.gateway import SESSION_SCHEMA, MemoryJobs, MemorySessionRecords, SessionRecord
from oxydra.gateway.lifecycle import ChildSessionRecorder
from oxydra.gateway.recall import search_sessions
from oxydra.memory import HashedEmbedder, Memory
from oxydra.runtime import MemoryConversations
from oxydra.runtime.background import BackgroundJob, BackgroundRunner
from oxydra.runtime.brief import SubagentBrief
from oxydra.runtime.loop import AgentRuntime
from oxydra.testing.mock_provider import MockProvider

TOPICS = ["invoice", "flight", "garden", "piano", "tax", "router", "recipe", "contract"]


async def _recall(folder: Path) -> None:
    memory = await Memory.open(folder / "r.db", embedder=HashedEmbedder(), schemas=[SESSION_SCHEMA])
    records = MemorySessionRecords(memory)
    await records.create_many(
        [SessionRecord(session_id=f"s{i:04}", user_id="alice") for i in range(1000)]
    )
    for i in range(1000):
        topic = TOPICS[i % len(TOPICS)]
        said = [
            Message(role="user", content=f"About the {topic} number {i}: what should I do?"),
            Message(role="assistant", content=f"For {topic} {i}, start with the basics."),
            Message(role="user", content=f"Thanks, and the deadline for {topic} {i}?"),
            Message(role="assistant", content=f"The {topic} {i} deadline is on day {i % 28}."),
        ]
        await memory.create_session(f"s{i:04}", user_id="alice")
        await memory.append_events(f"s{i:04}", said)
    times = []
    for n in range(200):
        start = time.perf_counter()
        await search_sessions(memory, records, "alice", "now", f"{TOPICS[n % 8]} {n * 5} deadline")
        times.append(time.perf_counter() - start)
    await memory.close()
    print(
        f"recall over 1,000 sessions (4,000 messages): p50 {percentile(times, 50) * 1000:.1f} ms, "
        f"p99 {percentile(times, 99) * 1000:.1f} ms"
    )


async def _background(folder: Path) -> None:
    memory = await Memory.open(folder / "b.db", embedder=HashedEmbedder(), schemas=[SESSION_SCHEMA])
    records = MemorySessionRecords(memory)
    await records.create_many([SessionRecord(session_id="parent", user_id="alice")])
    runtime = AgentRuntime(
        provider=MockProvider([]), tools=None, config=RuntimeConfig(), provider_id="m",  # type: ignore[arg-type]
        model="m", system_prompt="p", store=MemoryConversations(memory, index=True),
    )  # fmt: skip
    children = ChildSessionRecorder(records)
    runner = BackgroundRunner(MemoryJobs(memory), per_user=4)
    done = asyncio.Event()
    count = 200

    async def child(job: BackgroundJob) -> tuple[str, None]:
        return "report", None

    async def report(job: BackgroundJob, text: str, label: object) -> None:
        await runtime.deliver(
            job.parent_session_id, job.user_id, Message(role="user", content=text)
        )

    delivered = 0

    async def counted(job: BackgroundJob, text: str, label: object) -> None:
        nonlocal delivered
        await report(job, text, label)
        delivered += 1
        if delivered == count:
            done.set()

    runner.run_child, runner.report = child, counted
    start = time.perf_counter()
    for n in range(count):
        sid = f"subagent:parent:{n}"
        await children.started(
            user_id="alice", parent_session_id="parent", session_id=sid, agent_name="helper"
        )
        brief = SubagentBrief(agent_name="helper", goal="g")
        await runner.submit(
            BackgroundJob(
                job_id=f"j{n}",
                user_id="alice",
                parent_session_id="parent",
                session_id=sid,
                channel="tui",
                brief=brief,
            )
        )
    await done.wait()
    while runner.running:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    await memory.close()
    print(f"background bookkeeping per child: {elapsed / count * 1000:.2f} ms (mean of {count})")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_recall(Path(folder)))
        asyncio.run(_background(Path(folder)))


if __name__ == "__main__":
    main()
