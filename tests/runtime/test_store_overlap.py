"""The turn's store writes off the critical path of the first delta, durability kept.

The prompt (and a step's tool results) are written while the next model call is made; the
sink shows no item of the answer before that write is durable, the turn ends only after
every write, and a write that fails fails the turn without losing the messages it carried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from oxydra.config.schema import RuntimeConfig
from oxydra.core.errors import MemoryStoreError
from oxydra.core.messages import Message, ToolCall
from oxydra.core.stream import Progress, StreamItem, Text
from oxydra.runtime.api import TurnRequest
from oxydra.runtime.conversation import Summary
from oxydra.runtime.loop import AgentRuntime
from oxydra.runtime.tokens import EstimateCounter
from oxydra.testing.mock_provider import MockProvider, reply
from tests.runtime.support import FunctionTools


class GatedStore:
    """A conversation store whose writes wait for `release` (a slow disk), or fail.

    `hold` names the writes (0-based) that wait; None: every write waits.
    """

    def __init__(self, hold: set[int] | None = None) -> None:
        self.release = asyncio.Event()
        self.hold = hold
        self.writes = 0
        self.stored: list[list[str]] = []
        self.fail_next = False
        self.log: list[str] = []

    async def load(self, session_id: str, user_id: str) -> tuple[list[Message], Summary | None]:
        return [], None

    async def append(self, session_id: str, user_id: str, messages: Sequence[Message]) -> None:
        self.log.append("write begins")
        index, self.writes = self.writes, self.writes + 1
        if self.hold is None or index in self.hold:
            await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            self.log.append("write fails")
            raise MemoryStoreError("disk full")
        self.stored.append([m.role for m in messages])
        self.log.append("write durable")

    async def save_summary(self, session_id: str, summary: Summary) -> None:
        return None


class Recorder:
    """A sink that notes each item against the store's log."""

    def __init__(self, store: GatedStore) -> None:
        self.store = store
        self.items: list[StreamItem] = []

    async def __call__(self, item: StreamItem) -> None:
        self.items.append(item)
        if not isinstance(item, Progress):
            self.store.log.append(f"shown {type(item).__name__}")


class WatchedProvider(MockProvider):
    """Notes in the store's log when each model call starts."""

    def __init__(self, store: GatedStore, steps: list[Any]) -> None:
        super().__init__(steps)
        self.store = store

    def stream(self, context: Any) -> Any:
        self.store.log.append("model called")
        return super().stream(context)


def runtime(provider: MockProvider, store: GatedStore, tools: FunctionTools | None = None) -> Any:
    return AgentRuntime(
        provider=provider,
        tools=tools or FunctionTools(),
        config=RuntimeConfig(),
        provider_id="mock",
        model="m",
        system_prompt="You are a test.",
        store=store,
        counter=EstimateCounter(),
    )


def request(turn_id: str = "t") -> TurnRequest:
    return TurnRequest(user_id="u", session_id="s", turn_id=turn_id, prompt="hi")


async def _release_after_model_call(store: GatedStore, calls: int = 1) -> None:
    while store.log.count("model called") < calls:
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    store.release.set()


async def test_the_model_is_called_while_the_prompt_is_written_nothing_shows_before() -> None:
    store = GatedStore()
    rt = runtime(WatchedProvider(store, [reply("Hello")]), store)
    sink = Recorder(store)
    releaser = asyncio.create_task(_release_after_model_call(store))
    outcome = await rt.run_turn(request(), sink)
    await releaser
    assert outcome.ok
    first_shown = store.log.index("shown Text")
    assert store.log.index("write begins") < store.log.index("model called")
    assert store.log.index("model called") < store.log.index("write durable") < first_shown
    assert store.stored == [["user"], ["assistant"]]  # the answer too, before the turn ended


async def test_tool_results_are_durable_before_the_next_answer_shows() -> None:
    async def echo(text: str = "") -> str:
        return f"echo:{text}"

    store = GatedStore(hold={2})  # the tool result's write is slow
    releaser = asyncio.create_task(_release_after_model_call(store, calls=2))
    tools = FunctionTools()
    tools.add("echo", echo, required=["text"])
    call = ToolCall(id="c1", name="echo", arguments={"text": "x"})
    rt = runtime(WatchedProvider(store, [reply("", call), reply("done")]), store, tools)
    outcome = await rt.run_turn(request(), Recorder(store))
    await releaser
    assert outcome.ok
    # prompt; the call's start (before it runs); its result; the answer
    assert store.stored == [["user"], ["assistant"], ["tool"], ["assistant"]]
    shown = store.log.index("shown Text")
    durable = [i for i, e in enumerate(store.log) if e == "write durable"]
    second_call = [i for i, e in enumerate(store.log) if e == "model called"][1]
    assert second_call < durable[2] < shown, "the answer showed before the result was durable"


async def test_a_failed_prompt_write_fails_the_turn_shows_nothing_and_keeps_the_prompt() -> None:
    store = GatedStore()
    store.fail_next = True
    store.release.set()
    rt = runtime(WatchedProvider(store, [reply("lost"), reply("second")]), store)
    sink = Recorder(store)
    with pytest.raises(MemoryStoreError, match="disk full"):
        await rt.run_turn(request("t1"), sink)
    assert not [i for i in sink.items if isinstance(i, Text)], "an answer to an unstored prompt"
    conversation = await rt.conversation("s", "u")
    assert conversation.writing is None and conversation.stored == 0
    # the next turn hands the unstored prompt again, with its own
    outcome = await rt.run_turn(request("t2"), Recorder(store))
    assert outcome.ok
    assert store.stored[0][:2] == ["user", "user"]


async def test_a_turn_cancelled_while_its_prompt_is_written_still_stores_it() -> None:
    store = GatedStore()
    rt = runtime(WatchedProvider(store, [reply("never")]), store)
    rt.provider.item_delay = 30
    task = asyncio.create_task(rt.run_turn(request(), Recorder(store)))
    while "model called" not in store.log:
        await asyncio.sleep(0)
    task.cancel()
    store.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.stored and store.stored[0] == ["user"]
    assert (await rt.conversation("s", "u")).writing is None
