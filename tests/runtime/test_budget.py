"""The context window: newest first, tool exchanges kept whole, the latest message required."""

from __future__ import annotations

import pytest

from oxydra.core.messages import FunctionDecl, Message, ToolCall
from oxydra.runtime.budget import ContextTooSmallError, history_units, plan_window
from oxydra.runtime.tokens import EstimateCounter, load_counter

COUNTER = EstimateCounter()
SYSTEM = Message(role="system", content="You are helpful.")


def exchange(i: int) -> list[Message]:
    call = ToolCall(id=f"c{i}", name="file_read", arguments={"path": f"/shared/{i}"})
    return [
        Message(role="user", content=f"question {i} " + "x" * 200),
        Message(role="assistant", tool_calls=(call,)),
        Message(role="tool", content="y" * 400, tool_call_id=f"c{i}"),
        Message(role="assistant", content=f"answer {i}"),
    ]


HISTORY = [m for i in range(10) for m in exchange(i)]


def test_units_keep_a_call_with_its_results() -> None:
    units = history_units(HISTORY[:4])
    assert [len(u) for u in units] == [1, 2, 1]


def test_everything_fits_in_a_large_window() -> None:
    plan = plan_window(
        counter=COUNTER,
        fixed=[SYSTEM],
        history=HISTORY,
        tools=[],
        max_context_tokens=100_000,
        safety_buffer_tokens=100,
    )
    assert plan.dropped == 0 and plan.messages[0] == SYSTEM and len(plan.messages) == 41


@pytest.mark.parametrize("window", range(400, 3000, 37))
def test_a_small_window_never_splits_an_exchange(window: int) -> None:
    plan = plan_window(
        counter=COUNTER,
        fixed=[SYSTEM],
        history=HISTORY,
        tools=[],
        max_context_tokens=window,
        safety_buffer_tokens=50,
    )
    sent = plan.messages[1:]
    call_ids = {c.id for m in sent for c in m.tool_calls}
    result_ids = {m.tool_call_id for m in sent if m.role == "tool"}
    assert call_ids == result_ids
    assert sent[-1] == HISTORY[-1]
    assert list(sent) == HISTORY[len(HISTORY) - len(sent) :]


def test_tool_schemas_are_charged_to_the_budget() -> None:
    tools = [FunctionDecl(name=f"t{i}", description="d" * 400, parameters={}) for i in range(5)]
    bare = plan_window(
        counter=COUNTER,
        fixed=[SYSTEM],
        history=HISTORY,
        tools=[],
        max_context_tokens=2000,
        safety_buffer_tokens=0,
    )
    charged = plan_window(
        counter=COUNTER,
        fixed=[SYSTEM],
        history=HISTORY,
        tools=tools,
        max_context_tokens=2000,
        safety_buffer_tokens=0,
    )
    assert charged.dropped > bare.dropped


def test_a_latest_message_too_big_for_the_window_is_a_clear_error() -> None:
    huge = [Message(role="user", content="z" * 10_000)]
    with pytest.raises(ContextTooSmallError, match="context window"):
        plan_window(
            counter=COUNTER,
            fixed=[SYSTEM],
            history=huge,
            tools=[],
            max_context_tokens=1000,
            safety_buffer_tokens=10,
        )


def test_the_real_tokenizer_loads_offline_and_counts() -> None:
    counter = load_counter("cl100k_base")
    assert counter.count("hello world") == 2
    assert load_counter("o200k_base").count("hello world") == 2
