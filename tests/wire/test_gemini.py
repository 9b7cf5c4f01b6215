"""Gemini: request building, thought signatures, stream chunks, bad input."""

from __future__ import annotations

import pytest

from oxydra.core import Context, FunctionDecl, Message, ModelId, ProviderId, ToolCall
from oxydra.core.errors import RateLimitError, WireError
from oxydra.core.messages import UsageUpdate
from oxydra.core.stream import ConnectionLost, FinishReason, ReasoningDelta, Text, ToolCallDelta
from oxydra.wire import ResponseAssembler
from oxydra.wire.gemini import GeminiProfile, GeminiStream, build_request, parse_response
from tests.wire.helpers import event, translate


def ctx(*messages: Message, model: str = "gemini-2.5-flash", **kw: object) -> Context:
    return Context(provider=ProviderId("gemini"), model=ModelId(model), messages=messages, **kw)  # type: ignore[arg-type]


class TestBuildRequest:
    @pytest.mark.parametrize(
        ("stream", "method", "query"),
        [(False, "generateContent", {}), (True, "streamGenerateContent", {"alt": "sse"})],
    )
    def test_path_and_query(self, stream: bool, method: str, query: dict[str, str]) -> None:
        request = build_request(
            ctx(Message(role="user", content="x"), model="models/gemini-2.5-flash"),
            GeminiProfile(),
            stream=stream,
        )
        assert request.path == f"/v1beta/models/gemini-2.5-flash:{method}"
        assert request.query == query

    def test_roles_system_instruction_and_function_responses(self) -> None:
        native = ToolCall(
            id="g1",
            name="f",
            arguments={"a": 1},
            provider_details={"native_id": True, "thought_signature": "TS"},
        )
        ours = ToolCall(id="call_x", name="g", arguments={})
        body = build_request(
            ctx(
                Message(role="system", content="be brief"),
                Message(role="user", content="go"),
                Message(role="assistant", tool_calls=(native, ours)),
                Message(role="tool", content='{"temp": 20}', tool_call_id="g1"),
                Message(role="tool", content="plain text", tool_call_id="call_x"),
            ),
            GeminiProfile(),
            stream=False,
        ).body
        assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
        assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
        assert body["contents"][1]["parts"] == [
            {"functionCall": {"name": "f", "args": {"a": 1}, "id": "g1"}, "thoughtSignature": "TS"},
            {"functionCall": {"name": "g", "args": {}}},
        ]
        assert body["contents"][2]["parts"] == [
            {"functionResponse": {"name": "f", "response": {"temp": 20}, "id": "g1"}},
            {"functionResponse": {"name": "g", "response": {"result": "plain text"}}},
        ]

    def test_tool_schemas_lose_keywords_gemini_rejects(self) -> None:
        schema = {
            "type": "object",
            "additionalProperties": False,
            "$schema": "x",
            "properties": {
                "a": {"type": "object", "additionalProperties": False, "properties": {}}
            },
        }
        body = build_request(
            ctx(
                Message(role="user", content="x"),
                tools=(FunctionDecl(name="f", description="d", parameters=schema),),
            ),
            GeminiProfile(),
            stream=False,
        ).body
        params = body["tools"][0]["functionDeclarations"][0]["parameters"]
        assert params == {
            "type": "object",
            "properties": {"a": {"type": "object", "properties": {}}},
        }

    def test_generation_config(self) -> None:
        body = build_request(
            ctx(Message(role="user", content="x"), max_output_tokens=50, temperature=0.1),
            GeminiProfile(include_thoughts=True),
            stream=False,
        ).body
        assert body["generationConfig"] == {
            "maxOutputTokens": 50,
            "temperature": 0.1,
            "thinkingConfig": {"includeThoughts": True},
        }

    def test_text_signature_returns_on_the_model_text(self) -> None:
        message = Message(
            role="assistant",
            content="answer",
            provider_details={"reasoning": [{"text": "", "signature": "TS"}]},
        )
        body = build_request(ctx(message), GeminiProfile(), stream=False).body
        assert body["contents"][0]["parts"] == [{"text": "answer", "thoughtSignature": "TS"}]


def chunk(parts: str, extra: str = "") -> bytes:
    content = f'{{"parts":[{parts}],"role":"model"}}'
    return f'data: {{"candidates":[{{"content":{content}{extra}}}]}}\r\n\r\n'.encode()


class TestStream:
    def test_calls_in_separate_chunks_keep_distinct_indexes(self) -> None:
        items = translate(
            GeminiStream(),
            [
                chunk('{"text":"thinking","thought":true}'),
                chunk('{"text":"Hi"}'),
                chunk('{"functionCall":{"name":"f","args":{"a":1}},"thoughtSignature":"TS"}'),
                chunk('{"functionCall":{"name":"g","args":{}}}'),
                b'data: {"candidates":[{"content":{"parts":[{"text":""}]},"finishReason":"STOP"}],'
                b'"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4,"thoughtsTokenCount":2,"totalTokenCount":9}}\r\n\r\n',
            ],
        )
        assert items == [
            ReasoningDelta(text="thinking"),
            Text(text="Hi"),
            ToolCallDelta(
                index=0, name="f", arguments='{"a":1}', provider_details={"thought_signature": "TS"}
            ),
            ToolCallDelta(index=1, name="g", arguments="{}"),
            FinishReason(reason="tool_calls", raw="STOP"),
            UsageUpdate(prompt_tokens=3, completion_tokens=6, total_tokens=9, reasoning_tokens=2),
        ]

    def test_usage_is_reported_once_with_the_last_values(self) -> None:
        usage = ',"usageMetadata":{"promptTokenCount":%d}'
        stream = [
            b'data: {"candidates":[{"content":{"parts":[{"text":"a"}]}}]'
            + (usage % 1).encode()
            + b"}\n\n",
            b'data: {"candidates":[{"content":{"parts":[]},"finishReason":"STOP"}]'
            + (usage % 2).encode()
            + b"}\n\n",
        ]
        reports = [i for i in translate(GeminiStream(), stream) if isinstance(i, UsageUpdate)]
        assert reports == [UsageUpdate(prompt_tokens=2)]

    def test_no_finish_reason_before_eof_is_connection_lost(self) -> None:
        assert isinstance(translate(GeminiStream(), [chunk('{"text":"a"}')])[-1], ConnectionLost)

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            ("SAFETY", "content_filter"),
            ("MAX_TOKENS", "length"),
            ("MALFORMED_FUNCTION_CALL", "error"),
            ("OTHER", "other"),
        ],
    )
    def test_finish_reasons(self, raw: str, reason: str) -> None:
        items = GeminiStream().on_event(event(f'{{"candidates":[{{"finishReason":"{raw}"}}]}}'))
        assert items == [FinishReason(reason=reason, raw=raw)]  # type: ignore[arg-type]

    def test_blocked_prompt_finishes_with_content_filter(self) -> None:
        items = GeminiStream().on_event(event('{"promptFeedback":{"blockReason":"SAFETY"}}'))
        assert items == [FinishReason(reason="content_filter", raw="SAFETY")]

    def test_error_payload_is_typed(self) -> None:
        with pytest.raises(RateLimitError):
            GeminiStream().on_event(
                event('{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}')
            )

    def test_malformed_chunk_is_a_wire_error(self) -> None:
        with pytest.raises(WireError):
            GeminiStream().on_event(event('{"candidates": {'))


class TestParseResponse:
    def test_whole_answer_with_signature_round_trip(self) -> None:
        body = (
            b'{"candidates":[{"content":{"parts":[{"text":"Hi","thoughtSignature":"TS"}],"role":"model"},'
            b'"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":1,"totalTokenCount":2},'
            b'"responseId":"r1"}'
        )
        response = parse_response(body)
        assert response.message.text == "Hi"
        assert response.finish_reason == "stop"
        assert response.response_id == "r1"
        assert response.message.provider_details == {"reasoning": [{"text": "", "signature": "TS"}]}

    def test_answer_without_candidates_is_a_wire_error(self) -> None:
        with pytest.raises(WireError):
            parse_response(b'{"usageMetadata":{}}')

    def test_assembler_turns_native_ids_into_calls(self) -> None:
        assembler = ResponseAssembler()
        for item in GeminiStream().on_event(
            event(
                '{"candidates":[{"content":{"parts":[{"functionCall":{"id":"n1","name":"f","args":{}}}]},"finishReason":"STOP"}]}'
            )
        ):
            assembler.feed(item)
        call = assembler.response().tool_calls[0]
        assert (call.id, call.provider_details) == ("n1", {"native_id": True})
