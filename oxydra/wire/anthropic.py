"""Anthropic Messages (`POST /v1/messages`).

Request: system messages go to the top-level `system`; the conversation alternates `user` and
`assistant` messages made of content blocks (`text`, `image`, `document`, `tool_use`,
`tool_result`, `thinking`); consecutive messages of one role are merged, since tool results
travel as `user` blocks. `max_tokens` is mandatory: the context's value, else the model's
output limit from the catalog (passed by the driver), else the profile's default.

Thinking blocks come back with a `signature` and must be returned verbatim on the next request
when tools are in play; they travel through `Message.provider_details["reasoning"]` (see
`oxydra.wire.assemble`).

Stream: typed events (`message_start`, `content_block_start/delta/stop`, `message_delta`,
`message_stop`, `ping`, `error`); unknown types are skipped. Each stream yields one
`UsageUpdate`, at `message_delta`, with prompt tokens counting cache reads and writes.
"""

from __future__ import annotations

from typing import Any

import msgspec

from oxydra.core.errors import WireError
from oxydra.core.log import get_logger
from oxydra.core.messages import Context, Message, Response, StopReason, UsageUpdate
from oxydra.core.stream import (
    ConnectionLost,
    FinishReason,
    ReasoningDelta,
    StreamItem,
    Text,
    ToolCallDelta,
)
from oxydra.wire._common import (
    ErrorInfo,
    WireRequest,
    b64,
    decode,
    media_kind,
    stream_error,
    system_text,
    tool_images,
    unsupported_media,
)
from oxydra.wire.sse import SSEEvent
from oxydra.wire.toolcalls import ToolCallAccumulator

_log = get_logger(__name__)

API_VERSION = "2023-06-01"
FINISH_REASONS: dict[str, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicProfile(msgspec.Struct, frozen=True, kw_only=True):
    """Facts about an Anthropic deployment.

    Attributes:
        name: the registry entry, for error messages.
        default_max_tokens: `max_tokens` when neither the context nor the catalog gives one;
            4096 is accepted by every Claude model.
        thinking_budget: enables extended thinking with this token budget when set.
        media: attachment kinds accepted (image, pdf).
        tool_images: the model reads images, so a tool result's images are sent (else only
            its text, which names them).
    """

    name: str = "anthropic"
    default_max_tokens: int = 4096
    thinking_budget: int | None = None
    media: frozenset[str] = frozenset({"image", "pdf"})
    tool_images: bool = True


def auth_headers(api_key: str | None) -> dict[str, str]:
    """`x-api-key` and the API version header."""
    headers = {"anthropic-version": API_VERSION}
    if api_key:
        headers["x-api-key"] = api_key
    return headers


def build_request(
    context: Context,
    profile: AnthropicProfile,
    *,
    stream: bool,
    max_tokens: int | None = None,
) -> WireRequest:
    """The Messages request; `max_tokens` is the model's output limit from the catalog."""
    body: dict[str, Any] = {
        "model": context.model,
        "max_tokens": context.max_output_tokens or max_tokens or profile.default_max_tokens,
        "messages": _conversation(context.messages, profile),
    }
    if system := system_text(context.messages):
        body["system"] = system
    if context.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in context.tools
        ]
        body["tool_choice"] = {"type": "auto"}
    if profile.thinking_budget:
        body["thinking"] = {"type": "enabled", "budget_tokens": profile.thinking_budget}
    elif context.temperature is not None:
        body["temperature"] = context.temperature
    if stream:
        body["stream"] = True
    return WireRequest(path="/v1/messages", body=body)


def _conversation(messages: tuple[Message, ...], profile: AnthropicProfile) -> list[Any]:
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message, profile)
        if not blocks:
            _log.debug("skipping an empty message", extra={"oxy": {"role": message.role}})
        elif turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(message: Message, profile: AnthropicProfile) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": _tool_content(message, profile),
            }
        ]
    blocks = _reasoning_blocks(message) if message.role == "assistant" else []
    if message.text:
        blocks.append({"type": "text", "text": message.text})
    blocks.extend(_media_block(part, profile) for part in message.media)
    for call in message.tool_calls:
        arguments = call.arguments if call.invalid_arguments is None else {}
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _tool_content(message: Message, profile: AnthropicProfile) -> str | list[dict[str, Any]]:
    """A tool result's text, plus its images when the model takes images (else text only:
    the tool's own text already names what was left out)."""
    images = tool_images(message, profile)
    if not images:
        return message.text
    return [{"type": "text", "text": message.text}, *(_media_block(p, profile) for p in images)]


def _reasoning_blocks(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for block in (message.provider_details or {}).get("reasoning", []):
        if "redacted" in block:
            blocks.append({"type": "redacted_thinking", "data": block["redacted"]})
        elif block.get("signature"):
            blocks.append(
                {"type": "thinking", "thinking": block["text"], "signature": block["signature"]}
            )
    return blocks


def _media_block(part: Any, profile: AnthropicProfile) -> dict[str, Any]:
    kind = media_kind(part.mime_type)
    if kind not in profile.media:
        raise unsupported_media(profile.name, part)
    source = {"type": "base64", "media_type": part.mime_type, "data": b64(part.data)}
    return {"type": "image" if kind == "image" else "document", "source": source}


# ---- inbound views -----------------------------------------------------------------------


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class _Block(msgspec.Struct):
    type: str = ""
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None


class _Message(msgspec.Struct):
    id: str | None = None
    content: list[_Block] = []
    stop_reason: str | None = None
    usage: _Usage | None = None


class _ErrorBody(msgspec.Struct):
    type: str | None = None
    message: str = "unknown error"


class _Event(msgspec.Struct):
    type: str
    index: int = 0
    message: _Message | None = None
    content_block: _Block | None = None
    delta: _Block | None = None
    usage: _Usage | None = None
    error: _ErrorBody | None = None


_message = msgspec.json.Decoder(_Message)
_event = msgspec.json.Decoder(_Event)


def _prompt_tokens(usage: _Usage) -> int | None:
    parts = (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens)
    return None if all(p is None for p in parts) else sum(p or 0 for p in parts)


def _usage(prompt: _Usage, output: _Usage) -> UsageUpdate:
    prompt_tokens = _prompt_tokens(prompt)
    completion = output.output_tokens
    total = None if prompt_tokens is None or completion is None else prompt_tokens + completion
    return UsageUpdate(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion,
        total_tokens=total,
        cache_read_tokens=prompt.cache_read_input_tokens,
    )


def _finish(raw: str) -> StopReason:
    return FINISH_REASONS.get(raw, "other")


def parse_response(body: bytes) -> Response:
    """A non-streaming Messages answer as our `Response`."""
    view = decode(body, _message, "message")
    text: list[str] = []
    reasoning: list[dict[str, Any]] = []
    tools = ToolCallAccumulator()
    calls = 0
    for block in view.content:
        if block.type == "text":
            text.append(block.text or "")
        elif block.type == "thinking":
            reasoning.append({"text": block.thinking or "", "signature": block.signature})
        elif block.type == "redacted_thinking":
            reasoning.append({"redacted": block.data or ""})
        elif block.type == "tool_use":
            args = msgspec.json.encode(block.input if block.input is not None else {}).decode()
            tools.add(ToolCallDelta(index=calls, id=block.id, name=block.name, arguments=args))
            calls += 1
    message = Message(
        role="assistant",
        content="".join(text) or None,
        tool_calls=tuple(tools.finish()),
        provider_details={"reasoning": reasoning} if reasoning else None,
    )
    usage = _usage(view.usage, view.usage) if view.usage else None
    finish = _finish(view.stop_reason) if view.stop_reason else None
    return Response(message=message, finish_reason=finish, usage=usage, response_id=view.id)


class AnthropicStream:
    """Translates the events of one Messages stream into stream items."""

    def __init__(self) -> None:
        self.done = False
        self._id: str | None = None
        self._input = _Usage()
        self._tool_index: dict[int, int] = {}
        self._finished = False

    def on_event(self, event: SSEEvent) -> list[StreamItem]:
        """Dispatch on the JSON `type` (the SSE `event:` name says the same)."""
        data = decode(event.data, _event, f"{event.event} event")
        match data.type:
            case "message_start":
                self._id = data.message.id if data.message else None
                self._input = (data.message.usage if data.message else None) or _Usage()
                return []
            case "content_block_start":
                return self._block_start(data.index, data.content_block)
            case "content_block_delta":
                return self._block_delta(data.index, data.delta)
            case "message_delta":
                return self._message_delta(data)
            case "message_stop":
                self.done = True
                return []
            case "error":
                error = data.error or _ErrorBody()
                raise stream_error("anthropic", ErrorInfo(message=error.message, type=error.type))
            case "ping" | "content_block_stop":
                return []
            case other:
                _log.debug("skipping unknown anthropic event", extra={"oxy": {"type": other}})
                return []

    def _block_start(self, index: int, block: _Block | None) -> list[StreamItem]:
        if block is None:
            raise WireError("content_block_start without content_block")
        if block.type == "tool_use":
            ordinal = self._tool_index.setdefault(index, len(self._tool_index))
            return [ToolCallDelta(index=ordinal, id=block.id, name=block.name)]
        if block.type == "redacted_thinking":
            return [ReasoningDelta(text="", provider_details={"redacted": block.data or ""})]
        if block.type == "text" and block.text:
            return [Text(text=block.text)]
        return []

    def _block_delta(self, index: int, delta: _Block | None) -> list[StreamItem]:
        if delta is None:
            raise WireError("content_block_delta without a typed delta")
        match delta.type:
            case "text_delta":
                return [Text(text=delta.text)] if delta.text else []
            case "input_json_delta":
                ordinal = self._tool_index.setdefault(index, len(self._tool_index))
                return [ToolCallDelta(index=ordinal, arguments=delta.partial_json or "")]
            case "thinking_delta":
                return [ReasoningDelta(text=delta.thinking or "")]
            case "signature_delta":
                return [ReasoningDelta(text="", signature=delta.signature or "")]
            case _:
                return []

    def _message_delta(self, data: _Event) -> list[StreamItem]:
        items: list[StreamItem] = []
        raw = data.delta.stop_reason if data.delta else None
        if raw:
            self._finished = True
            items.append(FinishReason(reason=_finish(raw), raw=raw, response_id=self._id))
        if data.usage is not None:
            prompt = data.usage if data.usage.input_tokens is not None else self._input
            items.append(_usage(prompt, data.usage))
        return items

    def on_eof(self) -> list[StreamItem]:
        """EOF before `message_stop` means the connection dropped."""
        if self.done:
            return []
        return [ConnectionLost(message="stream ended before message_stop")]
