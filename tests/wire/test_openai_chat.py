"""OpenAI Chat Completions: request building, answers, stream translation, bad input."""

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
from oxydra.core.errors import ProviderError, RateLimitError, WireError
from oxydra.core.messages import UsageUpdate
from oxydra.core.stream import ConnectionLost, FinishReason, ReasoningDelta, Text, ToolCallDelta
from oxydra.wire.openai_chat import (
    OpenAIChatProfile,
    OpenAIChatStream,
    build_request,
    parse_response,
)
from tests.wire.helpers import event, golden_events, translate

TOOL = FunctionDecl(
    name="search",
    description="Search.",
    parameters={
        "type": "object",
        "properties": {"q": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["q"],
    },
)


def ctx(*messages: Message, **kw: object) -> Context:
    return Context(
        provider=ProviderId("openai"), model=ModelId("gpt-4o-mini"), messages=messages, **kw
    )  # type: ignore[arg-type]


class TestBuildRequest:
    def test_conversation_maps_to_chat_roles(self) -> None:
        call = ToolCall(id="c1", name="search", arguments={"q": "x"})
        body = build_request(
            ctx(
                Message(role="system", content="sys"),
                Message(role="user", content="hi"),
                Message(role="assistant", content=None, tool_calls=(call,)),
                Message(role="tool", content="result", tool_call_id="c1"),
            ),
            OpenAIChatProfile(),
            stream=False,
        ).body
        assert body["messages"] == [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "search", "arguments": '{"q":"x"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "result"},
        ]
        assert "stream" not in body

    def test_stream_asks_for_usage_and_tools_are_auto(self) -> None:
        request = build_request(
            ctx(Message(role="user", content="hi"), tools=(TOOL,)), OpenAIChatProfile(), stream=True
        )
        assert request.path == "/v1/chat/completions"
        assert request.body["stream_options"] == {"include_usage": True}
        assert request.body["tool_choice"] == "auto"
        assert request.body["tools"][0]["function"]["parameters"] == TOOL.parameters

    @pytest.mark.parametrize("field", ["max_completion_tokens", "max_tokens"])
    def test_output_limit_uses_the_profile_field(self, field: str) -> None:
        profile = OpenAIChatProfile(max_tokens_field=field)  # type: ignore[arg-type]
        body = build_request(
            ctx(Message(role="user", content="x"), max_output_tokens=77), profile, stream=False
        ).body
        assert body[field] == 77

    def test_strict_tools_close_schemas_and_require_every_property(self) -> None:
        body = build_request(
            ctx(Message(role="user", content="x"), tools=(TOOL,)),
            OpenAIChatProfile(strict_tools=True),
            stream=False,
        ).body
        function = body["tools"][0]["function"]
        assert function["strict"] is True
        assert function["parameters"]["additionalProperties"] is False
        assert function["parameters"]["required"] == ["q", "n"]
        assert function["parameters"]["properties"]["n"]["type"] == ["integer", "null"]

    def test_compact_dialect_sends_the_shape_without_validation_keywords(self) -> None:
        schema = {
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "maxLength": 80, "pattern": "^[a-z]+$"},
                "n": {"type": "integer", "minimum": 1, "maximum": 9, "default": 3},
                "tags": {"type": "array", "items": {"type": "string", "format": "uri"}},
            },
            "required": ["pattern"],
            "$schema": "https://json-schema.org/draft/2020-12/schema",
        }
        tool = FunctionDecl(name="f", description="d", parameters=schema)
        body = build_request(
            ctx(Message(role="user", content="x"), tools=(tool,)),
            OpenAIChatProfile(schema_dialect="compact"),
            stream=False,
        ).body
        assert body["tools"][0]["function"]["parameters"] == {
            "type": "object",
            "properties": {
                "pattern": {"type": "string"},
                "n": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["pattern"],
        }
        assert schema["properties"]["pattern"]["maxLength"] == 80  # input untouched

    def test_full_dialect_sends_the_schema_as_is(self) -> None:
        body = build_request(
            ctx(Message(role="user", content="x"), tools=(TOOL,)), OpenAIChatProfile(), stream=False
        ).body
        assert body["tools"][0]["function"]["parameters"] == TOOL.parameters

    def test_images_travel_as_data_uris(self) -> None:
        message = Message(
            role="user",
            content=(TextPart(text="look"), MediaPart(mime_type="image/png", data=b"\x89PNG")),
        )
        body = build_request(ctx(message), OpenAIChatProfile(), stream=False).body
        assert body["messages"][0]["content"] == [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
        ]

    def test_media_the_profile_cannot_carry_is_refused(self) -> None:
        message = Message(role="user", content=(MediaPart(mime_type="video/mp4", data=b"x"),))
        with pytest.raises(ProviderError, match="video/mp4"):
            build_request(ctx(message), OpenAIChatProfile(), stream=False)

    def test_invalid_arguments_are_sent_back_verbatim(self) -> None:
        call = ToolCall(id="c1", name="f", invalid_arguments="{oops")
        body = build_request(
            ctx(Message(role="assistant", tool_calls=(call,))), OpenAIChatProfile(), stream=False
        ).body
        assert body["messages"][0]["tool_calls"][0]["function"]["arguments"] == "{oops"


class TestParseResponse:
    def test_text_tools_usage_and_finish(self) -> None:
        body = (
            b'{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",'
            b'"content":"ok","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\\"a\\":1}"}}]},'
            b'"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,'
            b'"prompt_tokens_details":{"cached_tokens":1}}}'
        )
        response = parse_response(body)
        assert response.message.text == "ok"
        assert response.tool_calls[0].arguments == {"a": 1}
        assert response.finish_reason == "tool_calls"
        assert response.usage == UsageUpdate(
            prompt_tokens=3, completion_tokens=2, total_tokens=5, cache_read_tokens=1
        )
        assert response.response_id == "chatcmpl-1"

    def test_no_choices_is_a_wire_error(self) -> None:
        with pytest.raises(WireError, match="without choices"):
            parse_response(b'{"id":"x","choices":[]}')

    def test_error_object_in_a_200_body_is_typed(self) -> None:
        with pytest.raises(RateLimitError):
            parse_response(
                b'{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}'
            )

    @pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"choices": 5}'])
    def test_garbage_is_a_wire_error(self, body: bytes) -> None:
        with pytest.raises(WireError):
            parse_response(body)


class TestStream:
    def test_deltas_become_items(self) -> None:
        chunks = golden_events("openai_tool_stream.sse")
        items = translate(OpenAIChatStream(), chunks)
        assert items == [
            ReasoningDelta(text="think"),
            Text(text="Hi"),
            ToolCallDelta(index=0, id="c", name="f"),
            ToolCallDelta(index=0, arguments="{}"),
            FinishReason(reason="tool_calls", raw="tool_calls", response_id="a"),
            UsageUpdate(prompt_tokens=1, completion_tokens=2, total_tokens=3),
        ]

    def test_malformed_json_chunk_is_a_wire_error(self) -> None:
        with pytest.raises(WireError, match="malformed"):
            OpenAIChatStream().on_event(event('{"choices": [ oops'))

    def test_eof_before_done_and_finish_is_connection_lost(self) -> None:
        items = translate(
            OpenAIChatStream(), [b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n']
        )
        assert isinstance(items[-1], ConnectionLost)

    def test_eof_after_finish_without_done_is_complete(self) -> None:
        chunk = b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
        assert not any(
            isinstance(i, ConnectionLost) for i in translate(OpenAIChatStream(), [chunk])
        )

    def test_done_marks_the_stream_complete(self) -> None:
        stream = OpenAIChatStream()
        stream.on_event(event("[DONE]"))
        assert stream.done and stream.on_eof() == []

    def test_error_object_mid_stream_is_typed(self) -> None:
        with pytest.raises(RateLimitError):
            OpenAIChatStream().on_event(
                event('{"error":{"message":"busy","code":"rate_limit_exceeded"}}')
            )

    def test_unknown_finish_reason_maps_to_other(self) -> None:
        items = OpenAIChatStream().on_event(
            event('{"choices":[{"delta":{},"finish_reason":"weird"}]}')
        )
        assert items == [FinishReason(reason="other", raw="weird")]

    @pytest.mark.parametrize(
        ("data", "items"),
        [
            ('{"choices":[{"delta":{"content":"a"}}],"brand_new":{"x":[1]}}', [Text(text="a")]),
            ('{"choices":[{"delta":{"content":""}}]}', []),
            ('{"choices":[{"delta":null}]}', []),
            ('{"choices":[]}', []),
            ('{"choices":[{"delta":{"content":"a","tool_calls":[]}}]}', [Text(text="a")]),
            (
                '{"choices":[{"delta":{"content":"a","reasoning_content":"r"}}]}',
                [ReasoningDelta(text="r"), Text(text="a")],
            ),
            (
                '{"choices":[{"delta":{"content":"a","tool_calls":[{"index":1,"id":"c"}]}}]}',
                [Text(text="a"), ToolCallDelta(index=1, id="c")],
            ),
            (
                '{"id":"x","choices":[{"delta":{"content":"a"},"finish_reason":"length"},'
                '{"delta":{"content":"second choice"}}],"usage":{"prompt_tokens":3}}',
                [
                    Text(text="a"),
                    FinishReason(reason="length", raw="length", response_id="x"),
                    UsageUpdate(prompt_tokens=3),
                ],
            ),
        ],
    )
    def test_odd_chunks_give_the_items_of_their_fields(
        self, data: str, items: list[object]
    ) -> None:
        assert OpenAIChatStream().on_event(event(data)) == items

    @pytest.mark.parametrize(
        "data",
        [
            '{"choices":[{"delta":{"content":5}}]}',
            '{"choices":{"delta":{}}}',
            '{"choices":[{"delta":{"content":"a"}}]',
            '{"choices":[{"delta":{"content":"a"}}]} trailing',
            "",
            "[" * 200 + "]" * 200,
        ],
    )
    def test_malformed_chunks_are_wire_errors_naming_the_chunk(self, data: str) -> None:
        with pytest.raises(WireError, match="chat completion chunk"):
            OpenAIChatStream().on_event(event(data))
