"""OpenAI Chat Completions driver: the codec binding `oxydra.wire.openai_chat` to the driver."""

from __future__ import annotations

from oxydra.catalog import ProviderCaps
from oxydra.core.messages import Context, Response
from oxydra.wire import StreamTranslator, WireRequest
from oxydra.wire import openai_chat as wire

DEFAULT_BASE_URL = "https://api.openai.com"


class OpenAIChatCodec:
    """Chat Completions requests and answers for one deployment profile."""

    def __init__(self, profile: wire.OpenAIChatProfile) -> None:
        self.profile = profile

    def build(self, context: Context, *, stream: bool, caps: ProviderCaps) -> WireRequest:
        """The request; the output limit is left to the server unless the context sets one."""
        return wire.build_request(context, self.profile, stream=stream)

    def parse(self, body: bytes) -> Response:
        """A whole answer."""
        return wire.parse_response(body)

    def translator(self) -> StreamTranslator:
        """A translator for one stream."""
        return wire.OpenAIChatStream()
