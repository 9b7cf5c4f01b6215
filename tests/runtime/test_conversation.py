"""`Conversation.called`: whether a session has called a tool, as its history grows."""

from __future__ import annotations

from oxydra.core import Message, ToolCall
from oxydra.runtime.conversation import Conversation


def _call(name: str) -> Message:
    return Message(role="assistant", tool_calls=(ToolCall(id=name, name=name, arguments={}),))


def test_a_call_is_seen_when_it_arrives_and_stays_seen() -> None:
    conversation = Conversation(session_id="s", user_id="u")
    conversation.history += [Message(role="user", content="hi"), _call("file_read")]
    assert not conversation.called("skill_load")
    conversation.history.append(Message(role="user", content="skill_load"))  # only text
    assert not conversation.called("skill_load")
    conversation.history += [_call("skill_load"), Message(role="assistant", content="ok")]
    assert conversation.called("skill_load") and conversation.called("file_read")
    assert not conversation.called("skill_create")


def test_a_resumed_history_is_read_whole() -> None:
    history = [_call("skill_load"), Message(role="assistant", content="done")]
    assert Conversation(session_id="s", user_id="u", history=history).called("skill_load")
