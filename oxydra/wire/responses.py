"""OpenAI Responses (`POST /v1/responses`).

Request: typed `input` items (`message` with `input_text`/`input_image`/`input_file` or
`output_text` parts, `function_call`, `function_call_output`), system text in `instructions`
(sent on every request: the API does not carry instructions over a `previous_response_id`),
tools flat as `{"type": "function", "name", "description", "parameters"}`. A tool result with
images (an MCP server's) sends its `output` as a list: `input_text`, then `input_image` items.

Chaining: with `previous_response_id` the server already holds the conversation up to that
response, so only the messages after it (`start`) are sent. The driver decides when a chain is
valid; this module only builds the request.

Stream: named events (`response.output_text.delta`, `response.output_item.added`,
`response.function_call_arguments.delta`, `response.completed`, `response.failed`, `error`...);
unknown ones are skipped. `response.completed` (or `.incomplete`) carries the usage and the
response id, and completes any function call whose arguments were not streamed.
"""

from __future__ import annotations

from typing import Any

import msgspec

from oxydra.core.errors import WireError
from oxydra.core.log import get_logger
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
    ErrorInfo,
    WireRequest,
    data_uri,
    decode,
    media_kind,
    stream_error,
    system_text,
    tool_images,
    unsupported_media,
)
from oxydra.wire._schema import remembered, strict_schema
from oxydra.wire.assemble import ResponseAssembler
from oxydra.wire.sse import SSEEvent

_log = get_logger(__name__)

INCOMPLETE_REASONS: dict[str, StopReason] = {
    "max_output_tokens": "length",
    "content_filter": "content_filter",
}


class ResponsesProfile(msgspec.Struct, frozen=True, kw_only=True):
    """Facts about a Responses API deployment.

    Attributes:
        name: the registry entry, for error messages.
        store: ask the server to keep responses (required for `previous_response_id`).
        strict_tools: send tools in strict mode.
        media: attachment kinds accepted (image, pdf).
        tool_images: the model reads images, so a tool result's images are sent (else only
            its text, which names them).
    """

    name: str = "openai_responses"
    store: bool = True
    strict_tools: bool = False
    media: frozenset[str] = frozenset({"image", "pdf"})
    tool_images: bool = True


def auth_headers(api_key: str | None) -> dict[str, str]:
    """`Authorization: Bearer <key>`."""
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def build_request(
    context: Context,
    profile: ResponsesProfile,
    *,
    stream: bool,
    previous_response_id: str | None = None,
    start: int = 0,
) -> WireRequest:
    """The Responses request; with a previous response only `messages[start:]` are sent."""
    messages = context.messages[start:] if previous_response_id else context.messages
    body: dict[str, Any] = {
        "model": context.model,
        "input": [item for m in messages for item in _items(m, profile)],
        "store": profile.store,
    }
    if instructions := system_text(context.messages):
        body["instructions"] = instructions
    if previous_response_id:
        body["previous_response_id"] = previous_response_id
    if context.tools:
        body["tools"] = [_tool(t.name, t.description, t.parameters, profile) for t in context.tools]
        body["tool_choice"] = "auto"
    if context.max_output_tokens is not None:
        body["max_output_tokens"] = context.max_output_tokens
    if context.temperature is not None:
        body["temperature"] = context.temperature
    if stream:
        body["stream"] = True
    return WireRequest(path="/v1/responses", body=body)


def _tool(name: str, description: str, schema: dict[str, Any], profile: ResponsesProfile) -> Any:
    tool: dict[str, Any] = {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": schema,
    }
    if profile.strict_tools:
        tool.update(parameters=remembered(strict_schema, schema), strict=True)
    return tool


def _items(message: Message, profile: ResponsesProfile) -> list[dict[str, Any]]:
    match message.role:
        case "system":
            return []
        case "tool":
            output = {"type": "function_call_output", "call_id": message.tool_call_id}
            return [{**output, "output": _tool_output(message, profile)}]
        case "assistant":
            items = [_assistant_text(message.text)] if message.text else []
            return items + [_function_call(c) for c in message.tool_calls]
        case _:
            return [{"type": "message", "role": "user", "content": _user_parts(message, profile)}]


def _tool_output(message: Message, profile: ResponsesProfile) -> str | list[dict[str, Any]]:
    """A function's output: its text, or its text and images as input items."""
    images = tool_images(message, profile)
    if not images:
        return message.text
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": message.text}]
    return parts + [{"type": "input_image", "image_url": data_uri(p)} for p in images]


def _assistant_text(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def _function_call(call: ToolCall) -> dict[str, Any]:
    arguments = call.invalid_arguments
    if arguments is None:
        arguments = msgspec.json.encode(call.arguments).decode()
    return {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": arguments}


def _user_parts(message: Message, profile: ResponsesProfile) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if message.text:
        parts.append({"type": "input_text", "text": message.text})
    for media in message.media:
        kind = media_kind(media.mime_type)
        if kind not in profile.media:
            raise unsupported_media(profile.name, media)
        if kind == "image":
            parts.append({"type": "input_image", "image_url": data_uri(media)})
        else:
            name = media.file_name or "document.pdf"
            parts.append({"type": "input_file", "filename": name, "file_data": data_uri(media)})
    return parts


# ---- inbound views -----------------------------------------------------------------------


class _Content(msgspec.Struct):
    type: str = ""
    text: str | None = None
    refusal: str | None = None


class _Item(msgspec.Struct):
    type: str = ""
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    content: list[_Content] = []
    summary: list[_Content] = []


class _InputDetails(msgspec.Struct):
    cached_tokens: int | None = None


class _OutputDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None


class _Error(msgspec.Struct):
    message: str = "unknown error"
    code: str | None = None
    type: str | None = None


class _Incomplete(msgspec.Struct):
    reason: str | None = None


class _Response(msgspec.Struct):
    id: str | None = None
    status: str | None = None
    output: list[_Item] = []
    usage: _Usage | None = None
    error: _Error | None = None
    incomplete_details: _Incomplete | None = None


class _Event(msgspec.Struct):
    type: str = ""
    response: _Response | None = None
    item: _Item | None = None
    output_index: int | None = None
    item_id: str | None = None
    delta: str | None = None
    arguments: str | None = None
    message: str | None = None
    code: str | None = None


_response = msgspec.json.Decoder(_Response)
_event = msgspec.json.Decoder(_Event)


def _usage(usage: _Usage) -> UsageUpdate:
    cached, reasoning = usage.input_tokens_details, usage.output_tokens_details
    return UsageUpdate(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        cache_read_tokens=cached.cached_tokens if cached else None,
        reasoning_tokens=reasoning.reasoning_tokens if reasoning else None,
    )


def _error(response: _Response) -> Exception:
    error = response.error or _Error()
    info = ErrorInfo(message=error.message, code=error.code, type=error.type or error.code)
    return stream_error("openai_responses", info)


def _finish(response: _Response, has_calls: bool) -> FinishReason:
    status = response.status or "completed"
    if status == "incomplete":
        raw = response.incomplete_details.reason if response.incomplete_details else None
        cut = INCOMPLETE_REASONS.get(raw or "", "other")
        return FinishReason(reason=cut, raw=raw or status, response_id=response.id)
    reason: StopReason = "tool_calls" if has_calls else "stop"
    return FinishReason(reason=reason, raw=status, response_id=response.id)


def _item_items(item: _Item, index: int) -> list[StreamItem]:
    """Stream items for a complete output item (non-streaming answers)."""
    match item.type:
        case "message":
            return [Text(text=c.text or c.refusal or "") for c in item.content]
        case "function_call":
            return [
                ToolCallDelta(
                    index=index, id=item.call_id, name=item.name, arguments=item.arguments or ""
                )
            ]
        case "reasoning":
            return [ReasoningDelta(text=s.text or "") for s in item.summary]
        case _:
            return []


def parse_response(body: bytes) -> Response:
    """A non-streaming Responses answer as our `Response`."""
    view = decode(body, _response, "response")
    if view.status == "failed" or view.error is not None:
        raise _error(view)
    if view.id is None and not view.output:
        raise WireError("response object without id or output")
    assembler = ResponseAssembler()
    calls = 0
    for item in view.output:
        for stream_item in _item_items(item, calls):
            assembler.feed(stream_item)
        calls += item.type == "function_call"
    if view.usage:
        assembler.feed(_usage(view.usage))
    assembler.feed(_finish(view, calls > 0))
    return assembler.response()


class ResponsesStream:
    """Translates the events of one Responses stream into stream items."""

    def __init__(self) -> None:
        self.done = False
        self.response_id: str | None = None
        self._ordinal: dict[int, int] = {}
        self._streamed: dict[int, str] = {}

    def on_event(self, event: SSEEvent) -> list[StreamItem]:
        """Dispatch on the event's `type`."""
        data = decode(event.data, _event, f"{event.event} event")
        kind = data.type or event.event
        match kind:
            case "response.created" | "response.in_progress" | "response.queued":
                self.response_id = data.response.id if data.response else self.response_id
                return []
            case "response.output_text.delta" | "response.refusal.delta":
                return [Text(text=data.delta)] if data.delta else []
            case "response.reasoning_summary_text.delta" | "response.reasoning_text.delta":
                return [ReasoningDelta(text=data.delta)] if data.delta else []
            case "response.output_item.added":
                return self._item_added(data)
            case "response.function_call_arguments.delta":
                return self._arguments(data.output_index, data.delta or "")
            case "response.function_call_arguments.done":
                return self._arguments_done(data.output_index, data.arguments or "")
            case "response.completed" | "response.incomplete":
                return self._completed(data.response)
            case "response.failed":
                raise _error(data.response or _Response())
            case "error":
                info = ErrorInfo(message=data.message or "stream error", code=data.code)
                raise stream_error("openai_responses", info)
            case other:
                _log.debug("skipping responses event", extra={"oxy": {"type": other}})
                return []

    def _index(self, output_index: int | None) -> int:
        key = output_index if output_index is not None else -1
        return self._ordinal.setdefault(key, len(self._ordinal))

    def _item_added(self, data: _Event) -> list[StreamItem]:
        item = data.item
        if item is None or item.type != "function_call":
            return []
        index = self._index(data.output_index)
        self._streamed[index] = item.arguments or ""
        return [
            ToolCallDelta(
                index=index, id=item.call_id, name=item.name, arguments=item.arguments or ""
            )
        ]

    def _arguments(self, output_index: int | None, delta: str) -> list[StreamItem]:
        index = self._index(output_index)
        self._streamed[index] = self._streamed.get(index, "") + delta
        return [ToolCallDelta(index=index, arguments=delta)] if delta else []

    def _arguments_done(self, output_index: int | None, arguments: str) -> list[StreamItem]:
        index = self._index(output_index)
        streamed = self._streamed.get(index, "")
        if arguments == streamed or not arguments.startswith(streamed):
            return []
        return self._arguments(output_index, arguments[len(streamed) :])

    def _completed(self, response: _Response | None) -> list[StreamItem]:
        if response is None:
            raise WireError("response.completed without a response")
        self.done = True
        self.response_id = response.id or self.response_id
        items: list[StreamItem] = []
        for output_index, item in enumerate(response.output):
            if item.type == "function_call" and output_index not in self._ordinal:
                items.extend(_item_items(item, self._index(output_index)))
        if response.usage:
            items.append(_usage(response.usage))
        items.append(_finish(response, bool(self._ordinal)))
        return items

    def on_eof(self) -> list[StreamItem]:
        """EOF before `response.completed` means the connection dropped."""
        if self.done:
            return []
        return [ConnectionLost(message="stream ended before response.completed")]
