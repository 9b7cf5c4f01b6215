"""Anthropic Messages driver: the codec binding `oxydra.wire.anthropic` to the driver."""

from __future__ import annotations

from oxydra.catalog import ProviderCaps
from oxydra.core.messages import Context, Response
from oxydra.wire import StreamTranslator, WireRequest
from oxydra.wire import anthropic as wire

DEFAULT_BASE_URL = "https://api.anthropic.com"


class AnthropicCodec:
    """Messages requests and answers; `max_tokens` falls back to the model's catalog limit."""

    def __init__(self, profile: wire.AnthropicProfile) -> None:
        self.profile = profile

    def build(self, context: Context, *, stream: bool, caps: ProviderCaps) -> WireRequest:
        """The request, with `max_tokens` from the context, else the catalog's output limit."""
        return wire.build_request(
            context, self.profile, stream=stream, max_tokens=caps.max_output_tokens
        )

    def parse(self, body: bytes) -> Response:
        """A whole answer."""
        return wire.parse_response(body)

    def translator(self) -> StreamTranslator:
        """A translator for one stream."""
        return wire.AnthropicStream()
