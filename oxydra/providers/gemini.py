"""Google Gemini driver: the codec binding `oxydra.wire.gemini` to the driver."""

from __future__ import annotations

from oxydra.catalog import ProviderCaps
from oxydra.core.messages import Context, Response
from oxydra.wire import StreamTranslator, WireRequest
from oxydra.wire import gemini as wire

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"


class GeminiCodec:
    """generateContent requests and answers for one deployment profile."""

    def __init__(self, profile: wire.GeminiProfile) -> None:
        self.profile = profile

    def build(self, context: Context, *, stream: bool, caps: ProviderCaps) -> WireRequest:
        """The request (`:streamGenerateContent?alt=sse` when streaming)."""
        return wire.build_request(context, self.profile, stream=stream)

    def parse(self, body: bytes) -> Response:
        """A whole answer."""
        return wire.parse_response(body)

    def translator(self) -> StreamTranslator:
        """A translator for one stream."""
        return wire.GeminiStream()
