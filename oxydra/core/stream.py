"""Stream items: what a provider yields while the answer arrives, and runtime progress.

A tagged union (`type`) so a consumer can `match` exhaustively and a JSON stream
(`ask --json`, gateway) carries the same shapes.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from oxydra.core.messages import StopReason, UsageUpdate


class Text(msgspec.Struct, frozen=True, kw_only=True, tag="text", tag_field="type"):
    """A piece of the answer's text."""

    text: str


class ToolCallDelta(
    msgspec.Struct, frozen=True, kw_only=True, tag="tool_call_delta", tag_field="type"
):
    """A fragment of a tool call; fragments with the same `index` belong together."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    provider_details: dict[str, Any] | None = None


class ReasoningDelta(
    msgspec.Struct, frozen=True, kw_only=True, tag="reasoning_delta", tag_field="type"
):
    """A piece of the model's reasoning, when the provider exposes it.

    `signature` closes a reasoning block that must be sent back verbatim (Anthropic thinking,
    Gemini thought signatures); `provider_details` carries opaque blocks such as Anthropic's
    redacted thinking.
    """

    text: str
    signature: str | None = None
    provider_details: dict[str, Any] | None = None


class FinishReason(msgspec.Struct, frozen=True, kw_only=True, tag="finish", tag_field="type"):
    """Why the model stopped, mapped to our vocabulary, with the provider's own word."""

    reason: StopReason
    raw: str = ""
    response_id: str | None = None


class ConnectionLost(
    msgspec.Struct, frozen=True, kw_only=True, tag="connection_lost", tag_field="type"
):
    """The stream ended before the provider said it was done."""

    message: str


class ProviderCall(msgspec.Struct, frozen=True, tag="provider_call", tag_field="kind"):
    """Progress: the runtime is calling the model."""


class ToolExecution(msgspec.Struct, frozen=True, tag="tool_execution", tag_field="kind"):
    """Progress: the runtime is running tools."""

    tool_names: list[str]


class RollingSummary(msgspec.Struct, frozen=True, tag="rolling_summary", tag_field="kind"):
    """Progress: older history is being summarised."""


class ToolHeartbeat(msgspec.Struct, frozen=True, tag="tool_heartbeat", tag_field="kind"):
    """Progress: tools are still running after `elapsed_secs`."""

    tool_names: list[str]
    elapsed_secs: int


ProgressKind = ProviderCall | ToolExecution | RollingSummary | ToolHeartbeat


class Progress(msgspec.Struct, frozen=True, kw_only=True, tag="progress", tag_field="type"):
    """What the runtime is doing, in the gateway's `RuntimeProgressEvent` shape.

    The nested `kind` object matches the Rust version's wire format, so old clients read it.
    """

    kind: ProgressKind
    message: str
    turn: int
    max_turns: int


MediaKind = Literal["photo", "audio", "document", "voice", "video"]


class MediaOut(msgspec.Struct, frozen=True, kw_only=True, tag="media_out", tag_field="type"):
    """A file a tool delivers to the person (`send_media`); the gateway makes it a
    `media_attachment` frame. Like `Progress`, only the runtime emits it, never a provider."""

    file_path: str
    media_type: MediaKind
    data: bytes
    caption: str | None = None
    file_name: str | None = None


StreamItem = (
    Text
    | ToolCallDelta
    | ReasoningDelta
    | UsageUpdate
    | FinishReason
    | ConnectionLost
    | Progress
    | MediaOut
)
