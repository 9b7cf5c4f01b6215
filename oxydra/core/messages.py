"""Provider-neutral conversation types: what the runtime, store and providers share.

A `Message` holds plain text in `content`, or a tuple of parts when it carries media.
Provider-specific data that must round-trip (Anthropic thinking signatures, Gemini
thought signatures) lives in `provider_details`, never inside ids or text.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from oxydra.core.ids import ModelId, ProviderId

Role = Literal["system", "user", "assistant", "tool"]
StopReason = Literal["stop", "tool_calls", "length", "content_filter", "error", "other"]


class TextPart(msgspec.Struct, frozen=True, kw_only=True, tag="text", tag_field="type"):
    """A run of text inside a multi-part message."""

    text: str


class MediaPart(msgspec.Struct, frozen=True, kw_only=True, tag="media", tag_field="type"):
    """Inline media (image, audio, pdf...). `data` is raw bytes; JSON carries base64."""

    mime_type: str
    data: bytes
    file_name: str | None = None


ContentPart = TextPart | MediaPart


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """A call the model asked for.

    `invalid_arguments` holds the raw argument text when it never became a JSON object;
    the runtime turns it into feedback so the model can correct itself.
    """

    id: str
    name: str
    arguments: dict[str, Any] = {}
    invalid_arguments: str | None = None
    provider_details: dict[str, Any] | None = None


class Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One message of a conversation.

    `tools_started_at` (UTC, ISO 8601) is stamped on an assistant message when its tool
    calls are about to run, and stored before they do: after a crash it is what lets the
    history say a call may have run, and since when. Providers never see it.
    """

    role: Role
    content: str | tuple[ContentPart, ...] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    provider_details: dict[str, Any] | None = None
    tools_started_at: str | None = None

    @property
    def text(self) -> str:
        """The message's text, with media parts left out."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def media(self) -> tuple[MediaPart, ...]:
        """The media parts of the message, if any."""
        if self.content is None or isinstance(self.content, str):
            return ()
        return tuple(p for p in self.content if isinstance(p, MediaPart))


class FunctionDecl(msgspec.Struct, frozen=True, kw_only=True):
    """A tool as the model sees it: a name, a description and a JSON Schema."""

    name: str
    description: str
    parameters: dict[str, Any]


class UsageUpdate(
    msgspec.Struct, frozen=True, kw_only=True, tag="usage", tag_field="type", omit_defaults=True
):
    """Token counts the provider reported; also a stream item."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def total(self) -> int:
        """Total tokens, derived from the parts when the provider gave no total."""
        if self.total_tokens is not None:
            return self.total_tokens
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


class Context(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one provider call needs."""

    provider: ProviderId
    model: ModelId
    messages: tuple[Message, ...]
    tools: tuple[FunctionDecl, ...] = ()
    max_output_tokens: int | None = None
    temperature: float | None = None
    session_id: str | None = None


class Response(msgspec.Struct, frozen=True, kw_only=True):
    """A complete answer from the model."""

    message: Message
    finish_reason: StopReason | None = None
    usage: UsageUpdate | None = None
    response_id: str | None = None

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls of the answer."""
        return self.message.tool_calls
