"""Every core type survives a JSON round trip; bad enum values are refused clearly."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from oxydra.core import (
    ConnectionLost,
    Context,
    FinishReason,
    FunctionDecl,
    MediaPart,
    Message,
    ModelId,
    Progress,
    ProviderCall,
    ProviderId,
    ReasoningDelta,
    Response,
    RollingSummary,
    SafetyTier,
    SandboxTier,
    StreamItem,
    Text,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolExecution,
    ToolHeartbeat,
    UsageUpdate,
    new_request_id,
    new_session_id,
    uuid7,
)

CALL = ToolCall(id="c1", name="file_read", arguments={"path": "/shared/a.txt"})
MESSAGES = [
    Message(role="system", content="be brief"),
    Message(
        role="user",
        content=(TextPart(text="look"), MediaPart(mime_type="image/png", data=b"\x89PNG")),
    ),
    Message(role="assistant", content=None, tool_calls=(CALL,)),
    Message(role="tool", content="hello", tool_call_id="c1", name="file_read"),
    Message(role="assistant", content="done", provider_details={"signature": "abc"}),
]
STREAM_ITEMS: list[Any] = [
    Text(text="hi"),
    ToolCallDelta(index=0, id="c1", name="f", arguments='{"a":'),
    ReasoningDelta(text="thinking", signature="sig"),
    UsageUpdate(prompt_tokens=3, completion_tokens=4, total_tokens=7),
    FinishReason(reason="tool_calls", raw="tool_use"),
    ConnectionLost(message="peer closed"),
    Progress(kind=ProviderCall(), message="[1/3] Calling provider", turn=1, max_turns=3),
    Progress(kind=ToolExecution(tool_names=["a", "b"]), message="x", turn=2, max_turns=3),
    Progress(
        kind=ToolHeartbeat(tool_names=["a"], elapsed_secs=5), message="x", turn=2, max_turns=3
    ),
    Progress(kind=RollingSummary(), message="x", turn=2, max_turns=3),
]


class TestRoundTrips:
    @pytest.mark.parametrize("message", MESSAGES)
    def test_message_round_trips_through_json(self, message: Message) -> None:
        assert msgspec.json.decode(msgspec.json.encode(message), type=Message) == message

    @pytest.mark.parametrize("item", STREAM_ITEMS, ids=lambda i: type(i).__name__)
    def test_stream_item_round_trips_as_the_union(self, item: Any) -> None:
        decoded = msgspec.json.decode(msgspec.json.encode(item), type=StreamItem)
        assert decoded == item and type(decoded) is type(item)

    def test_context_and_response_round_trip(self) -> None:
        ctx = Context(
            provider=ProviderId("openai"),
            model=ModelId("gpt-4o-mini"),
            messages=tuple(MESSAGES),
            tools=(FunctionDecl(name="f", description="d", parameters={"type": "object"}),),
            max_output_tokens=100,
            session_id="s",
        )
        assert msgspec.json.decode(msgspec.json.encode(ctx), type=Context) == ctx
        resp = Response(
            message=MESSAGES[2], finish_reason="tool_calls", usage=UsageUpdate(total_tokens=3)
        )
        assert msgspec.json.decode(msgspec.json.encode(resp), type=Response) == resp
        assert resp.tool_calls == (CALL,)

    @pytest.mark.parametrize("tier", list(SafetyTier) + list(SandboxTier))
    def test_tiers_encode_as_their_snake_case_names(self, tier: Any) -> None:
        assert msgspec.json.encode(tier) == f'"{tier.value}"'.encode()
        assert msgspec.json.decode(msgspec.json.encode(tier), type=type(tier)) is tier


class TestWireShapes:
    def test_progress_nests_kind_like_the_rust_gateway(self) -> None:
        item = Progress(kind=ToolExecution(tool_names=["a"]), message="m", turn=1, max_turns=2)
        doc = msgspec.json.decode(msgspec.json.encode(item))
        assert doc["kind"] == {"kind": "tool_execution", "tool_names": ["a"]}

    def test_message_text_joins_text_parts_and_skips_media(self) -> None:
        assert MESSAGES[1].text == "look"
        assert MESSAGES[1].media[0].mime_type == "image/png"

    def test_usage_total_is_derived_when_missing(self) -> None:
        assert UsageUpdate(prompt_tokens=2, completion_tokens=5).total == 7


class TestRejections:
    @pytest.mark.parametrize(
        ("payload", "kind", "where"),
        [
            (b'{"role":"robot"}', Message, "$.role"),
            (b'{"type":"finish","reason":"bored"}', StreamItem, "$.reason"),
            (b'{"type":"teleport"}', StreamItem, "type"),
            (b'"sometimes"', SafetyTier, "sometimes"),
            (b'"cloud"', SandboxTier, "cloud"),
        ],
    )
    def test_unknown_enum_values_are_rejected_with_the_path(
        self, payload: bytes, kind: Any, where: str
    ) -> None:
        with pytest.raises(msgspec.ValidationError) as info:
            msgspec.json.decode(payload, type=kind)
        assert where in str(info.value)

    def test_frozen_messages_cannot_be_changed(self) -> None:
        with pytest.raises(AttributeError):
            MESSAGES[0].content = "x"  # type: ignore[misc]


class TestIds:
    def test_uuid7_is_version_7_and_sorts_by_creation(self) -> None:
        ids = [uuid7() for _ in range(2000)]
        assert all(i.version == 7 and i.variant == "specified in RFC 4122" for i in ids)
        assert ids == sorted(ids) and len(set(ids)) == len(ids)

    def test_a_session_id_is_the_canonical_spelling_of_a_uuid7(self) -> None:
        import uuid

        ids = [new_session_id() for _ in range(2000)]
        parsed = [uuid.UUID(i) for i in ids]
        assert [str(u) for u in parsed] == ids  # lowercase, 8-4-4-4-12
        assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert re.fullmatch(r"call-[0-9a-f]{12}", new_request_id("call"))  # 48 random bits
