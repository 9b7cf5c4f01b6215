"""Fold a stream of `StreamItem`s into the `Response` a non-streaming call would have given.

The runtime forwards stream items to the user as they come and feeds each one here; at the end
`response()` gives the assistant message to append to the conversation. Reasoning blocks that
must be sent back (Anthropic thinking signatures, redacted thinking, Gemini thought signatures)
are kept in `Message.provider_details["reasoning"]` as a list of blocks:

- `{"text": str, "signature": str | None}` for a signed (or trailing unsigned) reasoning block,
- `{"redacted": str}` for an opaque block the provider withheld.

Usage reports merge field by field: a later report fills in or overwrites earlier ones, as
Anthropic sends input tokens first and output tokens last.
"""

from __future__ import annotations

from typing import Any, assert_never

import msgspec

from oxydra.core.messages import Message, Response, StopReason, UsageUpdate
from oxydra.core.stream import (
    ConnectionLost,
    FinishReason,
    MediaOut,
    Progress,
    ReasoningDelta,
    StreamItem,
    Text,
    ToolCallDelta,
)
from oxydra.wire.toolcalls import ToolCallAccumulator


class ResponseAssembler:
    """Accumulates stream items; `response()` returns the complete answer."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._blocks: list[dict[str, Any]] = []
        self._tools = ToolCallAccumulator()
        self._usage: dict[str, int] = {}
        self._finish: StopReason | None = None
        self._response_id: str | None = None
        self.connection_lost: str | None = None

    def feed(self, item: StreamItem) -> None:
        """Take one stream item into account."""
        if type(item) is Text:  # the usual item
            self._text.append(item.text)
            return
        match item:
            case Text(text=text):
                self._text.append(text)
            case ReasoningDelta():
                self._add_reasoning(item)
            case ToolCallDelta():
                self._tools.add(item)
            case UsageUpdate():
                fields = msgspec.structs.asdict(item)
                self._usage.update({k: v for k, v in fields.items() if v is not None})
            case FinishReason(reason=reason, response_id=response_id):
                self._finish = reason
                self._response_id = response_id or self._response_id
            case ConnectionLost(message=message):
                self.connection_lost = message
            case Progress() | MediaOut():
                pass
            case _:
                assert_never(item)

    def _add_reasoning(self, item: ReasoningDelta) -> None:
        self._reasoning.append(item.text)
        if item.provider_details and "redacted" in item.provider_details:
            self._blocks.append({"redacted": item.provider_details["redacted"]})
        if item.signature is not None:
            self._blocks.append({"text": "".join(self._reasoning), "signature": item.signature})
            self._reasoning = []

    @property
    def reasoning_text(self) -> str:
        """All reasoning text seen so far, for display."""
        signed = "".join(b.get("text", "") for b in self._blocks)
        return signed + "".join(self._reasoning)

    def response(self) -> Response:
        """The assembled answer; `finish_reason` is `error` when the connection was lost."""
        calls = tuple(self._tools.finish())
        blocks = list(self._blocks)
        if any(self._reasoning):
            blocks.append({"text": "".join(self._reasoning), "signature": None})
        details = {"reasoning": blocks} if blocks else None
        message = Message(
            role="assistant",
            content="".join(self._text) or None,
            tool_calls=calls,
            provider_details=details,
        )
        finish = self._finish
        if self.connection_lost is not None:
            finish = "error"
        elif finish == "stop" and calls:
            finish = "tool_calls"
        usage = UsageUpdate(**self._usage) if self._usage else None
        return Response(
            message=message, finish_reason=finish, usage=usage, response_id=self._response_id
        )


def response_items(response: Response) -> list[StreamItem]:
    """The stream items that a complete `Response` stands for (inverse of the assembler).

    Used when a server ignores `stream: true` and answers with one JSON document.
    """
    message = response.message
    items: list[StreamItem] = []
    for block in (message.provider_details or {}).get("reasoning", []):
        if "redacted" in block:
            items.append(ReasoningDelta(text="", provider_details={"redacted": block["redacted"]}))
        else:
            items.append(ReasoningDelta(text=block["text"], signature=block.get("signature")))
    if message.text:
        items.append(Text(text=message.text))
    for index, call in enumerate(message.tool_calls):
        arguments = call.invalid_arguments
        if arguments is None:
            arguments = msgspec.json.encode(call.arguments).decode()
        items.append(
            ToolCallDelta(
                index=index,
                id=call.id,
                name=call.name,
                arguments=arguments,
                provider_details=call.provider_details,
            )
        )
    if response.usage is not None:
        items.append(response.usage)
    raw = response.finish_reason or "stop"
    items.append(FinishReason(reason=raw, raw=raw, response_id=response.response_id))
    return items
