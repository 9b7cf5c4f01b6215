"""Script steps for the fake LLM server: one step answers one request.

Steps are msgspec Structs tagged by `kind`, so a script is also a JSON file:
`[{"kind": "reply", "text": "hi"}, {"kind": "error", "status": 429, "retry_after": "1"}]`.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Call(msgspec.Struct, frozen=True, kw_only=True):
    """A tool call the fake model makes; `arguments` may be a raw string (even invalid JSON)."""

    name: str
    arguments: dict[str, Any] | str = {}
    id: str | None = None
    thought_signature: str | None = None


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Token counts the fake reports."""

    prompt_tokens: int = 10
    completion_tokens: int = 5
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class Reply(msgspec.Struct, frozen=True, kw_only=True, tag="reply", tag_field="kind"):
    """A successful answer: reasoning, then text, then tool calls.

    Attributes:
        text: the answer's text.
        reasoning: reasoning text (thinking / thought summary / reasoning_content).
        signature: signature of the reasoning block (Anthropic) or thought signature (Gemini).
        tool_calls: calls to make; their JSON arguments are split into `args_chunk` pieces.
        usage: token counts to report; None sends no usage at all.
        chunk: characters of text or reasoning per stream event.
        args_chunk: characters of tool arguments per stream event.
        delay: seconds to wait before each stream event after the first (slow tokens);
            without streaming, before the whole answer (a slow server).
        cut_after: stream events to send before the connection is dropped (non-streaming:
            the body is cut in half).
        finish: the provider's own finish word, replacing the natural one (e.g. `length`).
    """

    text: str = ""
    reasoning: str = ""
    signature: str | None = None
    tool_calls: list[Call] = []
    usage: Usage | None = msgspec.field(default_factory=Usage)
    chunk: int = 4
    args_chunk: int = 3
    delay: float = 0.0
    cut_after: int | None = None
    finish: str | None = None


class Fail(msgspec.Struct, frozen=True, kw_only=True, tag="error", tag_field="kind"):
    """An error status with a provider-shaped error body.

    Attributes:
        status: HTTP status.
        message: the error message.
        error_type: the provider's error type/code/status word (default by status).
        retry_after: the `Retry-After` header value, if any (seconds or HTTP-date).
        headers: more headers.
    """

    status: int = 500
    message: str = "internal error"
    error_type: str | None = None
    retry_after: str | None = None
    headers: dict[str, str] = {}


class Html(msgspec.Struct, frozen=True, kw_only=True, tag="html", tag_field="kind"):
    """An HTML error page, as a proxy or load balancer sends."""

    status: int = 502
    title: str = "502 Bad Gateway"


class Empty(msgspec.Struct, frozen=True, kw_only=True, tag="empty", tag_field="kind"):
    """A response with an empty body."""

    status: int = 200
    content_type: str = "application/json"


class Raw(msgspec.Struct, frozen=True, kw_only=True, tag="raw", tag_field="kind"):
    """Exact bytes: each string of `chunks` is written as one chunk (malformed streams)."""

    status: int = 200
    content_type: str = "text/event-stream"
    chunks: list[str] = []
    delay: float = 0.0


Step = Reply | Fail | Html | Empty | Raw


class Script(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Steps per conversation; a request is routed to a conversation by the
    `x-fake-conversation` header, else by its model name, else to `default`."""

    conversations: dict[str, list[Step]] = {}


def decode_script(data: bytes) -> Script:
    """A script file: a list of steps (the `default` conversation) or a `Script` object."""
    value = msgspec.json.decode(data)
    if isinstance(value, list):
        return Script(conversations={"default": msgspec.convert(value, list[Step])})
    return msgspec.convert(value, Script)
