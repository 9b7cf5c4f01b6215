"""OpenAI Responses: items, chaining slices, stream events, bad input."""

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
from oxydra.core.errors import BadRequestError, ServerError, WireError
from oxydra.core.messages import UsageUpdate
from oxydra.core.stream import ConnectionLost, FinishReason, Text, ToolCallDelta
from oxydra.wire.responses import ResponsesProfile, ResponsesStream, build_request, parse_response
from tests.wire.helpers import event, translate

MESSAGES = (
    Message(role="system", content="sys"),
    Message(role="user", content="q1"),
    Message(
        role="assistant",
        content="a1",
        tool_calls=(ToolCall(id="c1", name="f", arguments={"x": 1}),),
    ),
    Message(role="tool", content="out", tool_call_id="c1"),
    Message(
        role="user", content=(TextPart(text="q2"), MediaPart(mime_type="image/png", data=b"i"))
    ),
)


def ctx(**kw: object) -> Context:
    return Context(provider=ProviderId("r"), model=ModelId("gpt-4o"), messages=MESSAGES, **kw)  # type: ignore[arg-type]


class TestBuildRequest:
    def test_items_and_instructions(self) -> None:
        body = build_request(ctx(), ResponsesProfile(), stream=False).body
        assert body["instructions"] == "sys"
        assert body["store"] is True
        assert body["input"] == [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q1"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "a1"}],
            },
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"x":1}'},
            {"type": "function_call_output", "call_id": "c1", "output": "out"},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "q2"},
                    {"type": "input_image", "image_url": "data:image/png;base64,aQ=="},
                ],
            },
        ]

    def test_chained_request_sends_only_new_messages_and_keeps_instructions(self) -> None:
        body = build_request(
            ctx(), ResponsesProfile(), stream=True, previous_response_id="resp_1", start=3
        ).body
        assert body["previous_response_id"] == "resp_1"
        assert body["instructions"] == "sys"
        assert [i["type"] for i in body["input"]] == ["function_call_output", "message"]
        assert body["stream"] is True

    def test_tools_are_flat(self) -> None:
        tool = FunctionDecl(
            name="f", description="d", parameters={"type": "object", "properties": {}}
        )
        body = build_request(
            ctx(tools=(tool,), max_output_tokens=9), ResponsesProfile(), stream=False
        ).body
        assert body["tools"] == [
            {"type": "function", "name": "f", "description": "d", "parameters": tool.parameters}
        ]
        assert body["max_output_tokens"] == 9


def ev(kind: str, payload: str) -> bytes:
    return f'event: {kind}\ndata: {{"type":"{kind}",{payload}}}\n\n'.encode()


COMPLETED = (
    '"response":{"id":"resp_9","status":"completed","output":[],'
    '"usage":{"input_tokens":3,"output_tokens":2,"total_tokens":5}}'
)


class TestStream:
    def test_text_and_streamed_function_call(self) -> None:
        items = translate(
            ResponsesStream(),
            [
                ev(
                    "response.created",
                    '"response":{"id":"resp_9","status":"in_progress","output":[]}',
                ),
                ev("response.output_text.delta", '"output_index":0,"delta":"Hi"'),
                ev(
                    "response.output_item.added",
                    '"output_index":1,"item":{"type":"function_call","call_id":"c","name":"f","arguments":""}',
                ),
                ev(
                    "response.function_call_arguments.delta", '"output_index":1,"delta":"{\\"a\\":"'
                ),
                ev("response.function_call_arguments.delta", '"output_index":1,"delta":"1}"'),
                ev(
                    "response.function_call_arguments.done",
                    '"output_index":1,"arguments":"{\\"a\\":1}"',
                ),
                ev("response.something_new", '"x":1'),
                ev("response.completed", COMPLETED),
            ],
        )
        assert items == [
            Text(text="Hi"),
            ToolCallDelta(index=0, id="c", name="f"),
            ToolCallDelta(index=0, arguments='{"a":'),
            ToolCallDelta(index=0, arguments="1}"),
            UsageUpdate(prompt_tokens=3, completion_tokens=2, total_tokens=5),
            FinishReason(reason="tool_calls", raw="completed", response_id="resp_9"),
        ]

    def test_arguments_only_in_done_event_are_not_lost(self) -> None:
        items = translate(
            ResponsesStream(),
            [
                ev(
                    "response.output_item.added",
                    '"output_index":0,"item":{"type":"function_call","call_id":"c","name":"f"}',
                ),
                ev("response.function_call_arguments.done", '"output_index":0,"arguments":"{}"'),
                ev("response.completed", COMPLETED),
            ],
        )
        assert ToolCallDelta(index=0, arguments="{}") in items

    def test_calls_only_in_the_completed_response_are_emitted(self) -> None:
        done = (
            '"response":{"id":"r","status":"completed","output":'
            '[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"}]}'
        )
        items = translate(ResponsesStream(), [ev("response.completed", done)])
        assert items == [
            ToolCallDelta(index=0, id="c", name="f", arguments="{}"),
            FinishReason(reason="tool_calls", raw="completed", response_id="r"),
        ]

    def test_incomplete_for_output_limit_is_length(self) -> None:
        done = (
            '"response":{"id":"r","status":"incomplete",'
            '"incomplete_details":{"reason":"max_output_tokens"}}'
        )
        assert translate(ResponsesStream(), [ev("response.incomplete", done)])[-1] == FinishReason(
            reason="length", raw="max_output_tokens", response_id="r"
        )

    def test_failed_response_is_a_typed_error(self) -> None:
        with pytest.raises(ServerError):
            ResponsesStream().on_event(
                event(
                    '{"type":"response.failed","response":{"error":{"code":"server_error","message":"boom"}}}'
                )
            )

    def test_error_event_is_a_typed_error(self) -> None:
        with pytest.raises(BadRequestError):
            ResponsesStream().on_event(
                event('{"type":"error","code":"invalid_request_error","message":"bad"}')
            )

    def test_eof_before_completed_is_connection_lost(self) -> None:
        assert translate(ResponsesStream(), [ev("response.output_text.delta", '"delta":"x"')])[
            -1
        ] == ConnectionLost(message="stream ended before response.completed")

    def test_malformed_event_is_a_wire_error(self) -> None:
        with pytest.raises(WireError):
            ResponsesStream().on_event(event("nope"))


class TestParseResponse:
    def test_output_items(self) -> None:
        body = (
            b'{"id":"resp_1","status":"completed","output":['
            b'{"type":"reasoning","summary":[{"type":"summary_text","text":"why"}]},'
            b'{"type":"message","content":[{"type":"output_text","text":"Hi"}]},'
            b'{"type":"function_call","call_id":"c","name":"f","arguments":"{\\"a\\":2}"}],'
            b'"usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3,"output_tokens_details":{"reasoning_tokens":1}}}'
        )
        response = parse_response(body)
        assert (response.message.text, response.finish_reason, response.response_id) == (
            "Hi",
            "tool_calls",
            "resp_1",
        )
        assert response.tool_calls[0].arguments == {"a": 2}
        assert response.usage == UsageUpdate(
            prompt_tokens=1, completion_tokens=2, total_tokens=3, reasoning_tokens=1
        )
        assert response.message.provider_details == {
            "reasoning": [{"text": "why", "signature": None}]
        }

    def test_failed_status_is_a_typed_error(self) -> None:
        with pytest.raises(ServerError):
            parse_response(
                b'{"id":"r","status":"failed","error":{"code":"server_error","message":"x"}}'
            )

    def test_object_without_id_or_output_is_a_wire_error(self) -> None:
        with pytest.raises(WireError):
            parse_response(b"{}")
