"""OpenAI Chat Completions (`POST /v1/chat/completions`), also spoken by every compatible server.

Request: `messages` with `system`/`user`/`assistant`/`tool` roles; tool calls carry their
arguments as a JSON string; tools as `{"type": "function", "function": {...}}`. Streams add
`stream_options.include_usage` so the last chunk (with empty `choices`) carries usage, and end
with `data: [DONE]`. Compatible servers (vLLM, Ollama, OpenRouter, DeepSeek) stream reasoning
in `delta.reasoning` or `delta.reasoning_content`; both are read.

A `tool` message's content is text only in this API, so the images a tool result carries
(an MCP server's) follow the run of tool messages as one `user` message: a text part naming
each call, then its `image_url` parts. After the last tool message, never between two: every
tool call must be answered before anything else is said.
"""

from __future__ import annotations

from typing import Any, Literal

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
    WireRequest,
    data_uri,
    decode,
    media_kind,
    parse_error_body,
    stream_error,
    tool_images,
    unsupported_media,
)
from oxydra.wire._schema import compact_schema, remembered, strict_schema
from oxydra.wire.sse import SSEEvent
from oxydra.wire.toolcalls import ToolCallAccumulator

_log = get_logger(__name__)

FINISH_REASONS: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class OpenAIChatProfile(msgspec.Struct, frozen=True, kw_only=True):
    """Facts about one OpenAI-compatible deployment.

    Attributes:
        name: the registry entry, for error messages.
        max_tokens_field: `max_completion_tokens` (OpenAI, required by o-series models) or
            `max_tokens` (most compatible servers).
        strict_tools: send tools in strict mode (closed schemas, `strict: true`).
        include_usage: ask for the usage chunk at the end of a stream.
        media: attachment kinds the deployment accepts (image, audio, pdf).
        tool_images: the model reads images, so a tool result's images are sent (else only
            its text, which names them).
        schema_dialect: `full` JSON Schema for tools, or `compact` (no validation keywords)
            for servers whose grammar builders cannot take them.
    """

    name: str = "openai"
    max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens"
    strict_tools: bool = False
    include_usage: bool = True
    media: frozenset[str] = frozenset({"image", "audio", "pdf"})
    tool_images: bool = True
    schema_dialect: Literal["full", "compact"] = "full"


def auth_headers(api_key: str | None) -> dict[str, str]:
    """`Authorization: Bearer <key>`."""
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def build_request(context: Context, profile: OpenAIChatProfile, *, stream: bool) -> WireRequest:
    """The Chat Completions request for `context`."""
    body: dict[str, Any] = {
        "model": context.model,
        "messages": _messages(context.messages, profile),
    }
    if context.tools:
        body["tools"] = [_tool(t.name, t.description, t.parameters, profile) for t in context.tools]
        body["tool_choice"] = "auto"
    if context.max_output_tokens is not None:
        body[profile.max_tokens_field] = context.max_output_tokens
    if context.temperature is not None:
        body["temperature"] = context.temperature
    if stream:
        body["stream"] = True
        if profile.include_usage:
            body["stream_options"] = {"include_usage": True}
    return WireRequest(path="/v1/chat/completions", body=body)


def _tool(name: str, description: str, schema: dict[str, Any], profile: OpenAIChatProfile) -> Any:
    if profile.schema_dialect == "compact":
        schema = remembered(compact_schema, schema)
    function: dict[str, Any] = {"name": name, "description": description, "parameters": schema}
    if profile.strict_tools:
        function["parameters"] = remembered(strict_schema, schema)
        function["strict"] = True
    return {"type": "function", "function": function}


def _messages(messages: tuple[Message, ...], profile: OpenAIChatProfile) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []  # images of the current run of tool messages
    for message in messages:
        if pending and message.role != "tool":
            out.append({"role": "user", "content": pending})
            pending = []
        out.append(_message(message, profile))
        if images := tool_images(message, profile):
            label = f"Images returned by tool call {message.tool_call_id} ({message.name}):"
            pending.append({"type": "text", "text": label})
            pending += [{"type": "image_url", "image_url": {"url": data_uri(p)}} for p in images]
    if pending:
        out.append({"role": "user", "content": pending})
    return out


def _message(message: Message, profile: OpenAIChatProfile) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    if message.role == "assistant":
        # An empty string, never null: llama.cpp's server answers 500 to `"content": null`
        # beside tool calls, and every server tested accepts "".
        out: dict[str, Any] = {"role": "assistant", "content": message.text}
        if message.tool_calls:
            out["tool_calls"] = [_call(c) for c in message.tool_calls]
        return out
    if message.role == "user" and message.media:
        return {"role": "user", "content": _parts(message, profile)}
    return {"role": message.role, "content": message.text}


def _call(call: ToolCall) -> dict[str, Any]:
    arguments = call.invalid_arguments
    if arguments is None:
        arguments = msgspec.json.encode(call.arguments).decode()
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def _parts(message: Message, profile: OpenAIChatProfile) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.text}] if message.text else []
    for media in message.media:
        kind = media_kind(media.mime_type)
        if kind not in profile.media:
            raise unsupported_media(profile.name, media)
        if kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": data_uri(media)}})
        elif kind == "audio":
            fmt = media.mime_type.split("/", 1)[1].removeprefix("x-").replace("mpeg", "mp3")
            data = data_uri(media).split(",", 1)[1]
            parts.append({"type": "input_audio", "input_audio": {"data": data, "format": fmt}})
        elif kind == "pdf":
            name = media.file_name or "document.pdf"
            parts.append({"type": "file", "file": {"filename": name, "file_data": data_uri(media)}})
        else:
            raise unsupported_media(profile.name, media)
    return parts


# ---- inbound views: only the fields we read ------------------------------------------------


class _Function(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCall(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: _Function | None = None


class _Message(msgspec.Struct):
    content: str | None = None
    reasoning: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(msgspec.Struct):
    message: _Message | None = None
    delta: _Message | None = None
    finish_reason: str | None = None


class _PromptDetails(msgspec.Struct):
    cached_tokens: int | None = None


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None


class _Completion(msgspec.Struct):
    id: str | None = None
    choices: list[_Choice] = []
    usage: _Usage | None = None
    error: dict[str, Any] | None = None


_completion = msgspec.json.Decoder(_Completion)


def _usage(usage: _Usage) -> UsageUpdate:
    prompt, completion = usage.prompt_tokens_details, usage.completion_tokens_details
    return UsageUpdate(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cache_read_tokens=prompt.cached_tokens if prompt else None,
        reasoning_tokens=completion.reasoning_tokens if completion else None,
    )


def _finish(raw: str) -> StopReason:
    return FINISH_REASONS.get(raw, "other")


def parse_response(body: bytes) -> Response:
    """A non-streaming Chat Completions answer as our `Response`."""
    completion = decode(body, _completion, "chat completion")
    if completion.error is not None:
        raise stream_error("openai", parse_error_body(body))
    if not completion.choices or completion.choices[0].message is None:
        raise WireError("chat completion without choices")
    choice = completion.choices[0]
    view = choice.message or _Message()
    accumulator = ToolCallAccumulator()
    for n, call in enumerate(view.tool_calls or []):
        function = call.function or _Function()
        accumulator.add(
            ToolCallDelta(
                index=n, id=call.id, name=function.name, arguments=function.arguments or ""
            )
        )
    reasoning = view.reasoning or view.reasoning_content
    message = Message(
        role="assistant",
        content=view.content or None,
        tool_calls=tuple(accumulator.finish()),
        provider_details={"reasoning": [{"text": reasoning, "signature": None}]}
        if reasoning
        else None,
    )
    return Response(
        message=message,
        finish_reason=_finish(choice.finish_reason) if choice.finish_reason else None,
        usage=_usage(completion.usage) if completion.usage else None,
        response_id=completion.id,
    )


class OpenAIChatStream:
    """Translates the chunks of one Chat Completions stream into stream items."""

    def __init__(self) -> None:
        self.done = False
        self._finished = False

    def on_event(self, event: SSEEvent) -> list[StreamItem]:
        """One `data:` chunk (or `[DONE]`) to stream items."""
        if event.data.strip() == "[DONE]":
            self.done = True
            return []
        chunk = decode(event.data, _completion, "chat completion chunk")
        if chunk.error is not None:
            raise stream_error("openai", parse_error_body(event.data.encode()))
        items: list[StreamItem] = []
        if chunk.choices:
            choice = chunk.choices[0]
            delta = choice.delta
            if delta is not None:
                if delta.tool_calls or delta.reasoning or delta.reasoning_content:
                    items = self._delta(delta)
                elif delta.content:  # the usual chunk: a piece of the answer
                    items.append(Text(text=delta.content))
            if choice.finish_reason:
                self._finished = True
                raw = choice.finish_reason
                items.append(FinishReason(reason=_finish(raw), raw=raw, response_id=chunk.id))
        if chunk.usage is not None:
            items.append(_usage(chunk.usage))
        return items

    def _delta(self, delta: _Message) -> list[StreamItem]:
        items: list[StreamItem] = []
        reasoning = delta.reasoning or delta.reasoning_content
        if reasoning:
            items.append(ReasoningDelta(text=reasoning))
        if delta.content:
            items.append(Text(text=delta.content))
        for call in delta.tool_calls or []:
            function = call.function or _Function()
            if call.id or function.name or function.arguments:
                items.append(
                    ToolCallDelta(
                        index=call.index,
                        id=call.id,
                        name=function.name,
                        arguments=function.arguments or "",
                    )
                )
        return items

    def on_eof(self) -> list[StreamItem]:
        """EOF before `[DONE]` and before any finish reason means the connection dropped."""
        if self.done or self._finished:
            return []
        _log.warning("chat completion stream ended early")
        return [ConnectionLost(message="stream ended before [DONE]")]


# ---- GET /v1/models: what a self-hosted server says about its model ------------------------

MODELS_PATH = "/v1/models"


class _ServerMeta(msgspec.Struct):
    n_ctx_train: int | None = None


class _ServerModel(msgspec.Struct):
    id: str = ""
    max_model_len: int | None = None  # vLLM
    context_length: int | None = None  # LM Studio, OpenRouter
    meta: _ServerMeta | None = None  # llama.cpp's server


class _ModelList(msgspec.Struct):
    data: list[_ServerModel] = []


_model_list = msgspec.json.Decoder(_ModelList)


def model_context_window(body: bytes, model: str) -> int | None:
    """The context window `model` has on the server, from its `/v1/models` answer.

    llama.cpp's server lists its one model under a file name whatever the request says, so a
    single listed model is taken to be the one in use. None when the server does not say.
    """
    try:
        listed = _model_list.decode(body).data
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    found = [m for m in listed if m.id == model] or (listed if len(listed) == 1 else [])
    if not found:
        return None
    entry = found[0]
    size = entry.max_model_len or entry.context_length or (entry.meta and entry.meta.n_ctx_train)
    return size if isinstance(size, int) and size > 0 else None
