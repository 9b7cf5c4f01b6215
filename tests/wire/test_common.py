"""Error bodies, typed error mapping, schema rewrites and the response assembler."""

from __future__ import annotations

import time

import pytest

from oxydra.core.errors import (
    AuthenticationError,
    BadRequestError,
    ContextTooLongError,
    RateLimitError,
    ServerError,
)
from oxydra.core.messages import UsageUpdate
from oxydra.core.stream import ConnectionLost, FinishReason, ReasoningDelta, Text, ToolCallDelta
from oxydra.wire import (
    ErrorInfo,
    ResponseAssembler,
    error_for_status,
    is_context_too_long,
    parse_error_body,
)
from oxydra.wire._common import MAX_ERROR_MESSAGE
from oxydra.wire._schema import (
    MEMO_SIZE,
    compact_schema,
    gemini_schema,
    remembered,
    strict_schema,
)
from oxydra.wire.assemble import response_items


class TestParseErrorBody:
    @pytest.mark.parametrize(
        ("body", "info"),
        [
            (
                b'{"error":{"message":"bad key","type":"invalid_request_error",'
                b'"code":"invalid_api_key"}}',
                ErrorInfo(message="bad key", type="invalid_request_error", code="invalid_api_key"),
            ),
            (
                b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
                ErrorInfo(message="Overloaded", type="overloaded_error"),
            ),
            (
                b'[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":'
                b'[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}]}}]',
                ErrorInfo(message="quota", type="RESOURCE_EXHAUSTED", retry_delay=17.0),
            ),
            (b'{"error":"plain string"}', ErrorInfo(message="plain string")),
            (b'{"detail":"Not Found"}', ErrorInfo(message="Not Found")),
            (
                b"<html><head><title>502 Bad Gateway</title></head></html>",
                ErrorInfo(message="HTML page: 502 Bad Gateway"),
            ),
            (b"", ErrorInfo(message="empty body")),
            (b"upstream   connect\nerror", ErrorInfo(message="upstream connect error")),
        ],
    )
    def test_envelopes_and_fallbacks(self, body: bytes, info: ErrorInfo) -> None:
        assert parse_error_body(body) == info

    @pytest.mark.parametrize(
        "body",
        [
            b"<title>" * 9400,  # every start opens a title that never closes
            b"<TITLE x" * 8200,  # and one with no end to its tag
            b"<title>" * 9000 + b"</title>",  # the leftmost still wins, found in one pass
        ],
    )
    def test_a_hostile_html_body_is_read_in_linear_time(self, body: bytes) -> None:
        # a backtracking `<title[^>]*>(.*?)</title>` took 2.7 s of CPU on the first body
        began = time.thread_time()
        info = parse_error_body(body)
        assert time.thread_time() - began < 0.5  # one pass: about a millisecond
        assert (
            info.message.startswith("HTML page: <title>")
            if body.endswith(b"</title>")
            else ("HTML page" not in info.message)
        )

    def test_the_first_closed_title_is_the_one_shown(self) -> None:
        body = b"<html><Title lang=en>\n Gateway  Timeout </TITLE><title>other</title>"
        assert parse_error_body(body).message == "HTML page: Gateway  Timeout"

    def test_long_messages_are_truncated(self) -> None:
        long = b'{"error":{"message":"' + b"x" * 2000 + b'"}}'
        assert len(parse_error_body(long).message) == 2000
        huge = b'{"error":{"message":"' + b"x" * 20000 + b'"}}'
        assert len(parse_error_body(huge).message) == MAX_ERROR_MESSAGE


class TestErrorForStatus:
    @pytest.mark.parametrize(
        ("status", "message", "cls"),
        [
            (401, "no", AuthenticationError),
            (403, "no", AuthenticationError),
            (429, "slow", RateLimitError),
            (400, "This model's maximum context length is 128000 tokens", ContextTooLongError),
            (400, "prompt is too long: 210000 tokens > 200000 maximum", ContextTooLongError),
            (
                400,
                "The input token count (2000000) exceeds the maximum number of tokens allowed",
                ContextTooLongError,
            ),
            (413, "request_too_large", ContextTooLongError),
            (400, "unknown parameter", BadRequestError),
            (404, "no model", BadRequestError),
            (500, "boom", ServerError),
            (529, "Overloaded", ServerError),
        ],
    )
    def test_status_and_message_choose_the_class(
        self, status: int, message: str, cls: type
    ) -> None:
        error = error_for_status(status, ErrorInfo(message=message), provider="p")
        assert type(error) is cls
        assert error.status == status and message in str(error)

    def test_context_code_is_recognised(self) -> None:
        assert is_context_too_long(ErrorInfo(message="x", code="context_length_exceeded"))

    def test_retry_delay_from_body_when_no_header(self) -> None:
        assert (
            error_for_status(429, ErrorInfo(message="q", retry_delay=3.0), provider="p").retry_after
            == 3.0
        )


class TestSchemas:
    def test_strict_schema_recurses_into_nested_objects_and_arrays(self) -> None:
        schema = {
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"a": {"type": "string"}}},
                }
            },
            "required": ["items"],
        }
        strict = strict_schema(schema)
        inner = strict["properties"]["items"]["items"]
        assert inner["additionalProperties"] is False and inner["required"] == ["a"]
        assert inner["properties"]["a"]["type"] == ["string", "null"]
        assert schema["properties"]["items"]["items"] == {
            "type": "object",
            "properties": {"a": {"type": "string"}},
        }

    def test_an_optional_enum_accepts_null_in_strict_mode(self) -> None:
        mode = {"enum": ["day", "week"], "description": "When."}
        strict = strict_schema({"type": "object", "properties": {"mode": mode}})
        assert strict["required"] == ["mode"]
        assert strict["properties"]["mode"] == {"anyOf": [mode, {"type": "null"}]}
        typed = strict_schema({"type": "object", "properties": {"m": {**mode, "type": "string"}}})
        assert {"type": "null"} in typed["properties"]["m"]["anyOf"]  # not a type the enum refuses

    def test_gemini_schema_keeps_property_names_that_look_like_keywords(self) -> None:
        schema = {"type": "object", "properties": {"default": {"type": "string", "default": "x"}}}
        assert gemini_schema(schema) == {
            "type": "object",
            "properties": {"default": {"type": "string"}},
        }


class TestAssembler:
    def test_items_fold_into_a_response(self) -> None:
        assembler = ResponseAssembler()
        for item in [
            ReasoningDelta(text="a"),
            ReasoningDelta(text="b", signature="S"),
            ReasoningDelta(text="tail"),
            Text(text="Hel"),
            Text(text="lo"),
            ToolCallDelta(index=0, id="c", name="f"),
            ToolCallDelta(index=0, arguments="{}"),
            UsageUpdate(prompt_tokens=1),
            UsageUpdate(completion_tokens=2),
            FinishReason(reason="stop", raw="stop", response_id="r"),
        ]:
            assembler.feed(item)
        response = assembler.response()
        assert response.message.text == "Hello"
        assert response.finish_reason == "tool_calls"
        assert response.usage == UsageUpdate(prompt_tokens=1, completion_tokens=2)
        assert response.message.provider_details == {
            "reasoning": [{"text": "ab", "signature": "S"}, {"text": "tail", "signature": None}]
        }
        assert assembler.reasoning_text == "abtail"

    def test_connection_lost_marks_the_answer_as_error(self) -> None:
        assembler = ResponseAssembler()
        assembler.feed(Text(text="par"))
        assembler.feed(ConnectionLost(message="cut"))
        assert assembler.response().finish_reason == "error"
        assert assembler.connection_lost == "cut"

    def test_response_items_round_trip_through_the_assembler(self) -> None:
        assembler = ResponseAssembler()
        for item in [
            ReasoningDelta(text="r", signature="S"),
            Text(text="t"),
            ToolCallDelta(index=0, id="c", name="f", arguments='{"a":1}'),
            UsageUpdate(prompt_tokens=2),
            FinishReason(reason="tool_calls", raw="x", response_id="id"),
        ]:
            assembler.feed(item)
        original = assembler.response()
        again = ResponseAssembler()
        for item in response_items(original):
            again.feed(item)
        assert again.response() == original


class TestRememberedRewrites:
    SCHEMA = {"type": "object", "properties": {"q": {"type": "string", "maxLength": 9}}}

    def test_a_schema_is_rewritten_once_and_the_result_is_the_fresh_one(self) -> None:
        first = remembered(compact_schema, self.SCHEMA)
        assert first == compact_schema(self.SCHEMA)
        assert remembered(compact_schema, self.SCHEMA) is first

    def test_each_schema_and_each_rewrite_has_its_own_result(self) -> None:
        other = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}
        assert remembered(compact_schema, other) == compact_schema(other)
        assert remembered(strict_schema, self.SCHEMA) == strict_schema(self.SCHEMA)
        assert remembered(compact_schema, self.SCHEMA) == compact_schema(self.SCHEMA)

    def test_many_schemas_stay_correct_past_the_memo_size(self) -> None:
        schemas = [{"type": "string", "maxLength": n} for n in range(MEMO_SIZE + 5)]
        for schema in schemas:
            assert remembered(compact_schema, schema) == {"type": "string"}
        assert remembered(strict_schema, schemas[0]) == strict_schema(schemas[0])
