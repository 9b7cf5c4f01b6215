"""Images in tool results (an MCP server's) on the wire of every provider codec.

Each API takes them in its own place: Anthropic inside `tool_result`, Responses in a
`function_call_output` list, Chat Completions in a `user` message after the tool messages
(a `tool` message is text only), Gemini as `inlineData` parts after the function responses.
A model whose catalog entry reads no images gets the tool's text alone, which names them.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from oxydra.core import Context, MediaPart, Message, ModelId, ProviderId, TextPart, ToolCall
from oxydra.wire import anthropic, gemini, openai_chat, responses

PNG = b"\x89PNG\r\n\x1a\n-pixels"
B64 = base64.b64encode(PNG).decode()
NOTE = "a chart\n[image/png image from MCP server pics, 15 bytes; attached for models that ...]"


def conversation(*tool_results: Message) -> Context:
    calls = tuple(ToolCall(id=f"c{i}", name=f"pics__t{i}", arguments={}) for i in range(2))
    return Context(
        provider=ProviderId("p"),
        model=ModelId("m"),
        messages=(
            Message(role="user", content="draw"),
            Message(role="assistant", content=None, tool_calls=calls),
            *tool_results,
        ),
    )


def result(call: str, *, image: bool = True) -> Message:
    media = (MediaPart(mime_type="image/png", data=PNG),) if image else ()
    name = f"pics__t{call[-1]}"
    return Message(role="tool", content=(TextPart(text=NOTE), *media), tool_call_id=call, name=name)


def body(codec: str, context: Context, *, images: bool = True) -> dict[str, Any]:
    match codec:
        case "anthropic":
            profile = anthropic.AnthropicProfile(tool_images=images)
            return anthropic.build_request(context, profile, stream=False).body
        case "openai_chat":
            chat = openai_chat.OpenAIChatProfile(tool_images=images)
            return openai_chat.build_request(context, chat, stream=False).body
        case "responses":
            resp = responses.ResponsesProfile(tool_images=images)
            return responses.build_request(context, resp, stream=False).body
        case "gemini":
            gem = gemini.GeminiProfile(tool_images=images)
            return gemini.build_request(context, gem, stream=False).body
    raise AssertionError(codec)


class TestEachCodecCarriesTheImage:
    def test_anthropic_puts_it_in_the_tool_result(self) -> None:
        sent = body("anthropic", conversation(result("c0"), result("c1", image=False)))
        blocks = sent["messages"][-1]["content"]
        first, second = (b for b in blocks if b["type"] == "tool_result")
        assert [p["type"] for p in first["content"]] == ["text", "image"]
        assert first["content"][1]["source"] == {
            "type": "base64", "media_type": "image/png", "data": B64,
        }  # fmt: skip
        assert second["content"] == NOTE

    def test_responses_sends_the_output_as_text_and_input_image(self) -> None:
        sent = body("responses", conversation(result("c0"), result("c1", image=False)))
        first, second = (i for i in sent["input"] if i["type"] == "function_call_output")
        assert first["call_id"] == "c0"
        assert first["output"] == [
            {"type": "input_text", "text": NOTE},
            {"type": "input_image", "image_url": f"data:image/png;base64,{B64}"},
        ]
        assert second["output"] == NOTE

    def test_openai_chat_follows_the_last_tool_message_with_a_user_message(self) -> None:
        sent = body("openai_chat", conversation(result("c0"), result("c1")))
        roles = [m["role"] for m in sent["messages"]]
        assert roles == ["user", "assistant", "tool", "tool", "user"], "never between tools"
        assert all(isinstance(m["content"], str) for m in sent["messages"] if m["role"] == "tool")
        parts = sent["messages"][-1]["content"]
        assert [p["type"] for p in parts] == ["text", "image_url", "text", "image_url"]
        assert "tool call c0 (pics__t0)" in parts[0]["text"]
        assert "tool call c1 (pics__t1)" in parts[2]["text"]
        assert parts[1]["image_url"]["url"] == f"data:image/png;base64,{B64}"

    def test_openai_chat_sends_the_images_before_the_next_assistant_turn(self) -> None:
        later = (
            Message(role="assistant", content="a chart of sales"),
            Message(role="user", content="thanks"),
        )
        context = conversation(result("c0"), result("c1", image=False))
        context = Context(
            provider=context.provider, model=context.model, messages=(*context.messages, *later)
        )
        sent = body("openai_chat", context)
        roles = [m["role"] for m in sent["messages"]]
        assert roles == ["user", "assistant", "tool", "tool", "user", "assistant", "user"]
        assert sent["messages"][4]["content"][1]["type"] == "image_url"

    def test_gemini_puts_inline_data_after_every_function_response(self) -> None:
        sent = body("gemini", conversation(result("c0"), result("c1")))
        parts = sent["contents"][-1]["parts"]
        kinds = [next(iter(p)) for p in parts]
        assert kinds == [
            "functionResponse", "functionResponse", "text", "inlineData", "text", "inlineData",
        ]  # fmt: skip
        assert parts[3]["inlineData"] == {"mimeType": "image/png", "data": B64}
        assert "pics__t0 (call c0)" in parts[2]["text"]
        assert parts[0]["functionResponse"]["response"] == {"result": NOTE}

    def test_gemini_keeps_the_images_in_their_turn_when_the_user_speaks_next(self) -> None:
        context = conversation(result("c0"), result("c1", image=False))
        later = (Message(role="assistant", content="done"), Message(role="user", content="ok"))
        context = Context(
            provider=context.provider, model=context.model, messages=(*context.messages, *later)
        )
        sent = body("gemini", context)
        turns = [(c["role"], [next(iter(p)) for p in c["parts"]]) for c in sent["contents"]]
        assert turns[2] == ("user", ["functionResponse", "functionResponse", "text", "inlineData"])
        assert turns[3:] == [("model", ["text"]), ("user", ["text"])]


@pytest.mark.parametrize("codec", ["anthropic", "openai_chat", "responses", "gemini"])
def test_a_model_that_reads_no_images_gets_only_the_note(codec: str) -> None:
    sent = body(codec, conversation(result("c0"), result("c1")), images=False)
    text = str(sent)
    assert B64 not in text
    assert text.count("image/png image from MCP server pics") == 2
