"""Anthropic Messages: request building, thinking round trip, stream events, bad input."""

from __future__ import annotations

import pytest

from oxydra.core import (
    Context,
    FunctionDecl,
    MediaPart,
    Message,
    ModelId,
    ProviderId,
    TextPart,
    ToolCall,
)
from oxydra.core.errors import ServerError, WireError
from oxydra.core.messages import UsageUpdate
from oxydra.core.stream import ConnectionLost, FinishReason, ReasoningDelta, Text, ToolCallDelta
from oxydra.wire import ResponseAssembler
from oxydra.wire.anthropic import (
    AnthropicProfile,
    AnthropicStream,
    auth_headers,
    build_request,
    parse_response,
)
from tests.wire.helpers import event, golden_events, translate


def ctx(*messages: Message, **kw: object) -> Context:
    return Context(
        provider=ProviderId("anthropic"), model=ModelId("claude-x"), messages=messages, **kw
    )  # type: ignore[arg-type]


class TestBuildRequest:
    def test_system_messages_are_joined_into_system(self) -> None:
        body = build_request(
            ctx(
                Message(role="system", content="a"),
                Message(role="system", content="b"),
                Message(role="user", content="hi"),
            ),
            AnthropicProfile(),
            stream=False,
        ).body
        assert body["system"] == "a\n\nb"
        assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]

    @pytest.mark.parametrize(
        ("context_limit", "catalog_limit", "expected"),
        [(100, 8192, 100), (None, 8192, 8192), (None, None, 4096)],
    )
    def test_max_tokens_comes_from_context_then_catalog_then_profile(
        self, context_limit: int | None, catalog_limit: int | None, expected: int
    ) -> None:
        request = build_request(
            ctx(Message(role="user", content="x"), max_output_tokens=context_limit),
            AnthropicProfile(),
            stream=False,
            max_tokens=catalog_limit,
        )
        assert request.body["max_tokens"] == expected

    def test_tool_results_join_one_user_turn_after_tool_use(self) -> None:
        calls = (
            ToolCall(id="t1", name="f", arguments={"a": 1}),
            ToolCall(id="t2", name="g", invalid_arguments="{"),
        )
        body = build_request(
            ctx(
                Message(role="user", content="go"),
                Message(role="assistant", content="ok", tool_calls=calls),
                Message(role="tool", content="r1", tool_call_id="t1"),
                Message(role="tool", content="r2", tool_call_id="t2"),
            ),
            AnthropicProfile(),
            stream=False,
        ).body
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        assert body["messages"][1]["content"] == [
            {"type": "text", "text": "ok"},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
            {"type": "tool_use", "id": "t2", "name": "g", "input": {}},
        ]
        assert body["messages"][2]["content"] == [
            {"type": "tool_result", "tool_use_id": "t1", "content": "r1"},
            {"type": "tool_result", "tool_use_id": "t2", "content": "r2"},
        ]

    def test_signed_thinking_and_redacted_blocks_are_sent_back_first(self) -> None:
        details = {
            "reasoning": [
                {"text": "t", "signature": "S"},
                {"redacted": "R"},
                {"text": "u", "signature": None},
            ]
        }
        body = build_request(
            ctx(Message(role="assistant", content="x", provider_details=details)),
            AnthropicProfile(),
            stream=False,
        ).body
        assert body["messages"][0]["content"] == [
            {"type": "thinking", "thinking": "t", "signature": "S"},
            {"type": "redacted_thinking", "data": "R"},
            {"type": "text", "text": "x"},
        ]

    def test_tools_images_and_pdfs(self) -> None:
        tool = FunctionDecl(name="f", description="d", parameters={"type": "object"})
        message = Message(
            role="user",
            content=(
                TextPart(text="see"),
                MediaPart(mime_type="image/jpeg", data=b"j"),
                MediaPart(mime_type="application/pdf", data=b"p"),
            ),
        )
        body = build_request(ctx(message, tools=(tool,)), AnthropicProfile(), stream=True).body
        assert body["tools"] == [
            {"name": "f", "description": "d", "input_schema": {"type": "object"}}
        ]
        assert body["tool_choice"] == {"type": "auto"}
        assert body["stream"] is True
        kinds = [
            (b["type"], b.get("source", {}).get("media_type"))
            for b in body["messages"][0]["content"]
        ]
        assert kinds == [("text", None), ("image", "image/jpeg"), ("document", "application/pdf")]

    def test_thinking_budget_replaces_temperature(self) -> None:
        body = build_request(
            ctx(Message(role="user", content="x"), temperature=0.2),
            AnthropicProfile(thinking_budget=2048),
            stream=False,
        ).body
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
        assert "temperature" not in body

    def test_headers_carry_key_and_version(self) -> None:
        assert auth_headers("k") == {"anthropic-version": "2023-06-01", "x-api-key": "k"}


STREAM = golden_events("anthropic_tool_stream.sse")


class TestStream:
    def test_events_become_items_with_one_usage_report(self) -> None:
        items = translate(AnthropicStream(), STREAM)
        assert items == [
            ReasoningDelta(text="hm"),
            ReasoningDelta(text="", signature="SIG"),
            ReasoningDelta(text="", provider_details={"redacted": "RED"}),
            Text(text="Hi"),
            ToolCallDelta(index=0, id="tu", name="f"),
            ToolCallDelta(index=0, arguments='{"a"'),
            ToolCallDelta(index=0, arguments=":1}"),
            FinishReason(reason="tool_calls", raw="tool_use", response_id="msg_1"),
            UsageUpdate(
                prompt_tokens=15, completion_tokens=7, total_tokens=22, cache_read_tokens=5
            ),
        ]

    def test_assembled_answer_keeps_thinking_for_the_next_request(self) -> None:
        assembler = ResponseAssembler()
        for item in translate(AnthropicStream(), STREAM):
            assembler.feed(item)
        response = assembler.response()
        assert response.message.provider_details == {
            "reasoning": [{"text": "hm", "signature": "SIG"}, {"redacted": "RED"}]
        }
        assert response.tool_calls[0].arguments == {"a": 1}
        follow_up = build_request(ctx(response.message), AnthropicProfile(), stream=False).body
        assert follow_up["messages"][0]["content"][0] == {
            "type": "thinking",
            "thinking": "hm",
            "signature": "SIG",
        }

    def test_error_event_is_a_typed_error(self) -> None:
        with pytest.raises(ServerError) as caught:
            AnthropicStream().on_event(
                event(
                    '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
                    "error",
                )
            )
        assert caught.value.status == 529 and caught.value.retryable

    def test_eof_before_message_stop_is_connection_lost(self) -> None:
        assert isinstance(translate(AnthropicStream(), STREAM[:9])[-1], ConnectionLost)

    def test_malformed_event_is_a_wire_error(self) -> None:
        with pytest.raises(WireError):
            AnthropicStream().on_event(event("{", "content_block_delta"))


class TestParseResponse:
    def test_content_blocks_usage_and_stop_reason(self) -> None:
        body = (
            b'{"id":"msg_1","type":"message","role":"assistant","content":['
            b'{"type":"thinking","thinking":"t","signature":"S"},{"type":"text","text":"Hi"},'
            b'{"type":"tool_use","id":"tu","name":"f","input":{"x":[1]}}],'
            b'"stop_reason":"max_tokens","usage":{"input_tokens":4,"output_tokens":6}}'
        )
        response = parse_response(body)
        assert response.message.text == "Hi"
        assert response.tool_calls[0].arguments == {"x": [1]}
        assert response.message.provider_details == {"reasoning": [{"text": "t", "signature": "S"}]}
        assert response.finish_reason == "length"
        assert response.usage == UsageUpdate(prompt_tokens=4, completion_tokens=6, total_tokens=10)
