"""The OpenAI chat-completions API as a server speaks it, sans-I/O: requests in, bodies out.

What we serve is an agent, not a model: the agent keeps the conversation itself. A request's
last user message is the prompt; the conversation it belongs to is named by
`conversation_key` (the request's `user` field and its first user message, so a chat app
that resends the whole thread every time keeps landing in one session, and a new thread in
the app is a new session). Earlier messages of the request are not replayed into the agent.

Shapes follow the public API reference: `chat.completion`, `chat.completion.chunk` streamed
as Server-Sent Events ending with `data: [DONE]`, `list` of `model`, and errors as
`{"error": {"message", "type", "code"}}`.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Literal

import msgspec

from oxydra.core.errors import WireError

__all__ = [
    "ChatRequest",
    "chunk_event",
    "completion_body",
    "conversation_key",
    "decode_chat_request",
    "done_event",
    "error_body",
    "models_body",
    "prompt_of",
]

MAX_REQUEST_BYTES = 4 * 2**20


class _Part(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    text: str | None = None


class ChatMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One message of a request (only text parts are read)."""

    role: str
    content: str | list[_Part] | None = None

    @property
    def text(self) -> str:
        """The message's text parts joined."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "".join(p.text or "" for p in self.content if p.type == "text")


class _StreamOptions(msgspec.Struct, frozen=True, kw_only=True):
    include_usage: bool = False


class ChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    """`POST /v1/chat/completions`: the fields we honour; others are accepted and ignored."""

    model: str
    messages: list[ChatMessage]
    stream: bool = False
    stream_options: _StreamOptions | None = None
    user: str | None = None


_decoder = msgspec.json.Decoder(ChatRequest)
_encode = msgspec.json.Encoder().encode


def decode_chat_request(body: bytes) -> ChatRequest:
    """Parse and check a request body.

    Raises:
        WireError: naming what is wrong (size, JSON, a missing user message).
    """
    if len(body) > MAX_REQUEST_BYTES:
        raise WireError(f"request body of {len(body)} bytes exceeds {MAX_REQUEST_BYTES}")
    try:
        request = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise WireError(f"bad request: {exc}") from None
    if not any(m.role == "user" and m.text.strip() for m in request.messages):
        raise WireError("bad request: `messages` holds no user message with text")
    return request


def prompt_of(request: ChatRequest) -> str:
    """The last user message's text: what this request asks."""
    return next(m.text for m in reversed(request.messages) if m.role == "user" and m.text.strip())


def conversation_key(request: ChatRequest) -> str:
    """A stable name for the conversation: `user` and the first user message, hashed."""
    first = next(m.text for m in request.messages if m.role == "user" and m.text.strip())
    digest = hashlib.sha256(f"{request.user or ''}\x00{first}".encode()).hexdigest()
    return digest[:24]


def completion_body(
    completion_id: str,
    model: str,
    text: str,
    *,
    finish: Literal["stop", "length"] = "stop",
    usage: tuple[int, int] | None = None,
    created: int | None = None,
) -> bytes:
    """A whole `chat.completion`."""
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
            }
        ],
    }
    if usage is not None:
        body["usage"] = _usage(*usage)
    return _encode(body)


def chunk_event(
    completion_id: str,
    model: str,
    *,
    delta: str | None = None,
    role: bool = False,
    finish: str | None = None,
    usage: tuple[int, int] | None = None,
    created: int = 0,
) -> bytes:
    """One `chat.completion.chunk` as an SSE event (usage-only chunks have no choices)."""
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
    }
    if usage is not None:
        body["usage"] = _usage(*usage)
    else:
        content: dict[str, Any] = {"role": "assistant"} if role else {}
        if delta is not None:
            content["content"] = delta
        body["choices"] = [{"index": 0, "delta": content, "finish_reason": finish}]
    return b"data: " + _encode(body) + b"\n\n"


def done_event() -> bytes:
    """The stream's last event."""
    return b"data: [DONE]\n\n"


def models_body(names: list[str], created: int = 0) -> bytes:
    """`GET /v1/models`: the agents this `vm` serves."""
    data = [{"id": n, "object": "model", "created": created, "owned_by": "oxydra"} for n in names]
    return _encode({"object": "list", "data": data})


def error_body(message: str, kind: str, code: str | None = None) -> bytes:
    """An error as OpenAI clients parse it."""
    return _encode({"error": {"message": message, "type": kind, "code": code, "param": None}})


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
