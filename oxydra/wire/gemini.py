"""Google Gemini (`POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`).

Request: `contents` of `user`/`model` turns made of parts (`text`, `inlineData`,
`functionCall`, `functionResponse`), the system text in `systemInstruction`, tools as one
`functionDeclarations` list with schemas cut down to Gemini's OpenAPI subset. Tool results are
`functionResponse` parts naming the function, so the name is looked up from the earlier call.
Images a tool result carries (an MCP server's) follow the function responses of that turn as
`inlineData` parts, after all of them: a text part names the call, then its images (a shape
every Gemini generation takes, unlike the nested `functionResponse.parts` of Gemini 3 only).

Gemini's ids for function calls are optional; we keep theirs when sent and otherwise make our
own (sent back only when they came from Gemini). A `thoughtSignature` on a function-call part
must be returned with that part: it rides in `ToolCall.provider_details["thought_signature"]`.
A signature on a text part rides as a signed reasoning block (see `oxydra.wire.assemble`).

Stream: every `data:` event is a whole `GenerateContentResponse`; there is no terminal event,
so the stream is complete when a `finishReason` was seen before EOF. Usage is cumulative per
chunk; the last report is yielded once, at EOF. Tool-call indexes keep counting across chunks.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from oxydra.core.errors import WireError
from oxydra.core.messages import Context, Message, Response, StopReason, ToolCall, UsageUpdate
from oxydra.core.stream import (
    ConnectionLost,
    FinishReason,
    ReasoningDelta,
    StreamItem,
    Text,
    ToolCallDelta,
)
from oxydra.wire._common import (
    WireRequest,
    b64,
    decode,
    media_kind,
    parse_error_body,
    stream_error,
    system_text,
    tool_images,
    tool_output_object,
    unsupported_media,
)
from oxydra.wire._schema import gemini_schema, remembered
from oxydra.wire.assemble import ResponseAssembler
from oxydra.wire.sse import SSEEvent

_FILTERED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY")
FINISH_REASONS: dict[str, StopReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "MALFORMED_FUNCTION_CALL": "error",
    **dict.fromkeys(_FILTERED, "content_filter"),
}


class GeminiProfile(msgspec.Struct, frozen=True, kw_only=True):
    """Facts about a Gemini deployment.

    Attributes:
        name: the registry entry, for error messages.
        include_thoughts: ask for thought summaries (streamed as reasoning).
        media: attachment kinds accepted.
        tool_images: the model reads images, so a tool result's images are sent (else only
            its text, which names them).
    """

    name: str = "gemini"
    include_thoughts: bool = False
    media: frozenset[str] = frozenset({"image", "audio", "video", "pdf", "document"})
    tool_images: bool = True


def auth_headers(api_key: str | None) -> dict[str, str]:
    """`x-goog-api-key`."""
    return {"x-goog-api-key": api_key} if api_key else {}


def model_path(model: str, *, stream: bool) -> str:
    """`/v1beta/models/<model>:<method>`; a `models/` prefix on the id is accepted."""
    method = "streamGenerateContent" if stream else "generateContent"
    name = quote(model.removeprefix("models/"), safe="-._~")
    return f"/v1beta/models/{name}:{method}"


def build_request(context: Context, profile: GeminiProfile, *, stream: bool) -> WireRequest:
    """The generateContent request for `context`."""
    body: dict[str, Any] = {"contents": _contents(context.messages, profile)}
    if system := system_text(context.messages):
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if context.tools:
        decls = [
            {
                "name": t.name,
                "description": t.description,
                "parameters": remembered(gemini_schema, t.parameters),
            }
            for t in context.tools
        ]
        body["tools"] = [{"functionDeclarations": decls}]
    config: dict[str, Any] = {}
    if context.max_output_tokens is not None:
        config["maxOutputTokens"] = context.max_output_tokens
    if context.temperature is not None:
        config["temperature"] = context.temperature
    if profile.include_thoughts:
        config["thinkingConfig"] = {"includeThoughts": True}
    if config:
        body["generationConfig"] = config
    query = {"alt": "sse"} if stream else {}
    return WireRequest(path=model_path(context.model, stream=stream), body=body, query=query)


def _contents(messages: tuple[Message, ...], profile: GeminiProfile) -> list[dict[str, Any]]:
    names: dict[str, ToolCall] = {}
    contents: list[dict[str, Any]] = []
    trailing: list[dict[str, Any]] = []  # tool-result images, after the turn's responses
    for message in messages:
        if message.role == "system":
            continue
        names.update((c.id, c) for c in message.tool_calls)
        role = "model" if message.role == "assistant" else "user"
        parts = _parts(message, names, profile)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            if trailing:
                contents[-1]["parts"].extend(trailing)
                trailing = []
            contents.append({"role": role, "parts": parts})
        trailing += _tool_image_parts(message, parts, profile)
    if trailing:
        contents[-1]["parts"].extend(trailing)
    return contents


def _parts(message: Message, calls: dict[str, ToolCall], profile: GeminiProfile) -> list[Any]:
    if message.role == "tool":
        return [_function_response(message, calls)]
    parts: list[dict[str, Any]] = [{"text": message.text}] if message.text else []
    for media in message.media:
        if media_kind(media.mime_type) not in profile.media:
            raise unsupported_media(profile.name, media)
        parts.append({"inlineData": {"mimeType": media.mime_type, "data": b64(media.data)}})
    parts.extend(_function_call(call) for call in message.tool_calls)
    if message.role == "assistant" and parts and not message.tool_calls:
        signature = _text_signature(message)
        if signature:
            parts[-1]["thoughtSignature"] = signature
    return parts


def _tool_image_parts(
    message: Message, parts: list[dict[str, Any]], profile: GeminiProfile
) -> list[dict[str, Any]]:
    """A tool result's images as a label and `inlineData` parts ([] for anything else)."""
    images = tool_images(message, profile)
    if not images:
        return []
    name = parts[0]["functionResponse"]["name"]
    label = {"text": f"Images returned by {name} (call {message.tool_call_id}):"}
    inline = [{"inlineData": {"mimeType": p.mime_type, "data": b64(p.data)}} for p in images]
    return [label, *inline]


def _function_call(call: ToolCall) -> dict[str, Any]:
    details = call.provider_details or {}
    function: dict[str, Any] = {"name": call.name, "args": call.arguments}
    if details.get("native_id"):
        function["id"] = call.id
    part: dict[str, Any] = {"functionCall": function}
    if details.get("thought_signature"):
        part["thoughtSignature"] = details["thought_signature"]
    return part


def _function_response(message: Message, calls: dict[str, ToolCall]) -> dict[str, Any]:
    call = calls.get(message.tool_call_id or "")
    name = call.name if call else (message.name or "")
    response: dict[str, Any] = {"name": name, "response": tool_output_object(message.text)}
    if call and (call.provider_details or {}).get("native_id"):
        response["id"] = call.id
    return {"functionResponse": response}


def _text_signature(message: Message) -> str | None:
    blocks = (message.provider_details or {}).get("reasoning", [])
    signed = [b["signature"] for b in blocks if b.get("signature")]
    return signed[-1] if signed else None


# ---- inbound views -----------------------------------------------------------------------


class _FunctionCall(msgspec.Struct):
    name: str = ""
    args: dict[str, Any] | None = None
    id: str | None = None


class _Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool = False
    thought_signature: str | None = None
    function_call: _FunctionCall | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] = []


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct, rename="camel"):
    prompt_token_count: int | None = None
    candidates_token_count: int | None = None
    total_token_count: int | None = None
    cached_content_token_count: int | None = None
    thoughts_token_count: int | None = None


class _Feedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None


class _Answer(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] = []
    usage_metadata: _Usage | None = None
    prompt_feedback: _Feedback | None = None
    response_id: str | None = None
    error: dict[str, Any] | None = None


_answer = msgspec.json.Decoder(_Answer)


def _usage(usage: _Usage) -> UsageUpdate:
    thoughts = usage.thoughts_token_count
    completion = usage.candidates_token_count
    if thoughts is not None:
        completion = (completion or 0) + thoughts
    return UsageUpdate(
        prompt_tokens=usage.prompt_token_count,
        completion_tokens=completion,
        total_tokens=usage.total_token_count,
        cache_read_tokens=usage.cached_content_token_count,
        reasoning_tokens=thoughts,
    )


def _finish(raw: str) -> StopReason:
    return FINISH_REASONS.get(raw, "other")


def _part_items(part: _Part, next_index: int) -> list[StreamItem]:
    """Stream items for one part; a function call takes tool index `next_index`."""
    if part.function_call is not None:
        call = part.function_call
        details: dict[str, Any] = {"native_id": True} if call.id else {}
        if part.thought_signature:
            details["thought_signature"] = part.thought_signature
        args = msgspec.json.encode(call.args or {}).decode()
        return [
            ToolCallDelta(
                index=next_index,
                id=call.id,
                name=call.name,
                arguments=args,
                provider_details=details or None,
            )
        ]
    items: list[StreamItem] = []
    if part.text:
        items.append(ReasoningDelta(text=part.text) if part.thought else Text(text=part.text))
    if part.thought_signature:
        items.append(ReasoningDelta(text="", signature=part.thought_signature))
    return items


def _answer_of(data: bytes | str, what: str) -> _Answer:
    answer = decode(data, _answer, what)
    if answer.error is not None:
        payload = data.encode() if isinstance(data, str) else data
        raise stream_error("gemini", parse_error_body(payload))
    return answer


def parse_response(body: bytes) -> Response:
    """A non-streaming generateContent answer as our `Response`."""
    stream = GeminiStream()
    items = stream.on_event(SSEEvent(data=body.decode("utf-8", "replace")))
    items += stream.on_eof()
    if not stream.finished:
        raise WireError("generateContent answer without a candidate or finish reason")
    assembler = ResponseAssembler()
    for item in items:
        assembler.feed(item)
    return assembler.response()


class GeminiStream:
    """Translates the chunks of one streamGenerateContent response into stream items."""

    def __init__(self) -> None:
        self.done = False
        self.finished = False
        self._tools = 0
        self._usage: _Usage | None = None
        self._id: str | None = None

    def on_event(self, event: SSEEvent) -> list[StreamItem]:
        """One whole `GenerateContentResponse` to stream items."""
        answer = _answer_of(event.data, "generateContent chunk")
        self._usage = answer.usage_metadata or self._usage
        self._id = answer.response_id or self._id
        items: list[StreamItem] = []
        for candidate in answer.candidates[:1]:
            for part in candidate.content.parts if candidate.content else []:
                part_items = _part_items(part, self._tools)
                self._tools += sum(isinstance(i, ToolCallDelta) for i in part_items)
                items.extend(part_items)
            if candidate.finish_reason:
                items.append(self._finish(candidate.finish_reason))
        blocked = answer.prompt_feedback.block_reason if answer.prompt_feedback else None
        if blocked and not answer.candidates:
            self.finished = True
            items.append(FinishReason(reason="content_filter", raw=blocked, response_id=self._id))
        return items

    def _finish(self, raw: str) -> FinishReason:
        self.finished = True
        reason = _finish(raw)
        if reason == "stop" and self._tools:
            reason = "tool_calls"
        return FinishReason(reason=reason, raw=raw, response_id=self._id)

    def on_eof(self) -> list[StreamItem]:
        """The last usage report; `ConnectionLost` when no finish reason came."""
        self.done = True
        items: list[StreamItem] = [_usage(self._usage)] if self._usage else []
        if not self.finished:
            items.append(ConnectionLost(message="stream ended without a finishReason"))
        return items
