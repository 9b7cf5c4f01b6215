"""`repair` after a crash: say what is known about calls whose result was lost."""

from __future__ import annotations

from oxydra.core.messages import Message, ToolCall
from oxydra.runtime.conversation import repair

CALL = ToolCall(id="c1", name="shell_exec", arguments={"command": "make deploy"})


def test_a_call_with_a_recorded_start_may_have_run_since_then() -> None:
    history = [
        Message(role="user", content="deploy"),
        Message(role="assistant", tool_calls=(CALL,), tools_started_at="2026-12-03T07:50:01Z"),
    ]
    closed = repair(history)[-1]
    assert closed.role == "tool" and closed.tool_call_id == "c1"
    assert "started at 2026-12-03T07:50:01Z" in closed.text and "may have run" in closed.text
    assert "Not executed" not in closed.text


def test_an_older_history_without_a_start_still_does_not_claim_it_never_ran() -> None:
    history = [Message(role="assistant", tool_calls=(CALL,)), Message(role="user", content="hi")]
    repaired = repair(history)
    assert [m.role for m in repaired] == ["assistant", "tool", "user"]
    assert "may have run" in repaired[1].text and "Not executed" not in repaired[1].text
