"""Google Gemini driver: base URL and codec for `oxydra.wire.gemini`."""

from __future__ import annotations

from oxydra.providers._base import FormatCodec
from oxydra.wire import gemini as wire

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"


def codec(profile: wire.GeminiProfile) -> FormatCodec:
    """generateContent (`:streamGenerateContent?alt=sse` when streaming) for one deployment."""
    return FormatCodec(profile, wire.build_request, wire.parse_response, wire.GeminiStream)
