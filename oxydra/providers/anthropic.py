"""Anthropic Messages driver: base URL and codec for `oxydra.wire.anthropic`."""

from __future__ import annotations

from oxydra.providers._base import FormatCodec
from oxydra.wire import anthropic as wire

DEFAULT_BASE_URL = "https://api.anthropic.com"


def codec(profile: wire.AnthropicProfile) -> FormatCodec:
    """Messages for one deployment; `max_tokens` falls back to the catalog's output limit."""
    return FormatCodec(
        profile,
        wire.build_request,
        wire.parse_response,
        wire.AnthropicStream,
        output_limit_arg="max_tokens",
    )
