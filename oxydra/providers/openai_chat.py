"""OpenAI Chat Completions driver: base URL and codec for `oxydra.wire.openai_chat`."""

from __future__ import annotations

from oxydra.providers._base import FormatCodec
from oxydra.wire import openai_chat as wire

DEFAULT_BASE_URL = "https://api.openai.com"


def codec(profile: wire.OpenAIChatProfile) -> FormatCodec:
    """Chat Completions for one deployment (the server picks the output limit if unset)."""
    return FormatCodec(profile, wire.build_request, wire.parse_response, wire.OpenAIChatStream)
