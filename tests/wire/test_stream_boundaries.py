"""Each provider's recorded-style stream gives the same items however the bytes are split."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from oxydra.testing._fake_formats import FORMATS
from oxydra.testing.fake_llm import Call, Reply
from oxydra.wire import StreamTranslator
from oxydra.wire.anthropic import AnthropicStream
from oxydra.wire.gemini import GeminiStream
from oxydra.wire.openai_chat import OpenAIChatStream
from oxydra.wire.responses import ResponsesStream
from tests.wire.helpers import translate

TRANSLATORS: dict[str, Callable[[], StreamTranslator]] = {
    "openai": OpenAIChatStream,
    "anthropic": AnthropicStream,
    "gemini": GeminiStream,
    "openai_responses": ResponsesStream,
}
REPLY = Reply(
    text="Grüße, 世界",
    reasoning="hmm",
    tool_calls=[Call(name="lookup", arguments={"q": "ünï", "n": 2}, id="call_1")],
    chunk=3,
    args_chunk=2,
)


@pytest.mark.parametrize("fmt", sorted(TRANSLATORS))
def test_every_split_point_gives_the_same_items(fmt: str) -> None:
    stream = b"".join(FORMATS[fmt].stream(REPLY, "m", {"stream_options": {"include_usage": True}}))
    expected = translate(TRANSLATORS[fmt](), [stream])
    assert expected, "the golden stream gives items"
    step = max(1, len(stream) // 400)
    for cut in range(1, len(stream), step):
        assert translate(TRANSLATORS[fmt](), [stream[:cut], stream[cut:]]) == expected, cut
