"""The four drivers against the fake LLM: answers, streams, errors and bad input."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from oxydra.core.errors import (
    AuthenticationError,
    BadRequestError,
    ContextTooLongError,
    ProviderError,
    ProviderHTTPError,
    ProviderProtocolError,
    ProviderTimeoutError,
    ProviderTransportError,
    RateLimitError,
    ServerError,
)
from oxydra.core.messages import Response, UsageUpdate
from oxydra.core.stream import ConnectionLost, FinishReason, StreamItem, ToolCallDelta
from oxydra.providers import WireProvider
from oxydra.testing._fake_formats import FORMATS as FAKE_FORMATS
from oxydra.testing.fake_llm import Call, Empty, Fail, FakeLLM, Html, Raw, Reply, Usage
from oxydra.wire import ResponseAssembler
from tests.providers.conftest import FORMATS, WEATHER, ProviderFactory, context

TOOL_REPLY = Reply(
    text="Checking the weather.",
    reasoning="The user wants weather.",
    tool_calls=[Call(name="get_weather", arguments={"city": "Paris", "days": [1, 2, 3]})],
    usage=Usage(prompt_tokens=21, completion_tokens=13),
    args_chunk=2,
)


async def collect(provider: WireProvider, fmt: str, **kw: object) -> list[StreamItem]:
    return [item async for item in provider.stream(context(fmt=fmt, tools=(WEATHER,), **kw))]


def assemble(items: list[StreamItem]) -> Response:
    assembler = ResponseAssembler()
    for item in items:
        assembler.feed(item)
    return assembler.response()


def check_tool_answer(response: Response) -> None:
    assert response.message.text == "Checking the weather."
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("get_weather", {"city": "Paris", "days": [1, 2, 3]})
    ]
    assert response.finish_reason == "tool_calls"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (21, 13)
    assert response.message.provider_details is not None


@pytest.mark.parametrize("fmt", FORMATS)
class TestAnswers:
    async def test_complete_returns_text_tool_calls_usage_and_finish(
        self, fmt: str, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM([TOOL_REPLY]) as llm:
            response = await make_provider(fmt, llm.base_url).complete(
                context(fmt=fmt, tools=(WEATHER,))
            )
            check_tool_answer(response)
            assert "stream" not in (llm.requests[0].json() or {})  # type: ignore[operator]
            llm.assert_done()

    async def test_stream_yields_fragments_that_assemble_to_the_same_answer(
        self, fmt: str, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM([TOOL_REPLY]) as llm:
            items = await collect(make_provider(fmt, llm.base_url), fmt)
            llm.assert_done()
        check_tool_answer(assemble(items))
        assert sum(isinstance(i, UsageUpdate) for i in items) == 1
        assert sum(isinstance(i, FinishReason) for i in items) == 1
        if fmt != "gemini":  # Gemini sends each function call whole
            assert sum(isinstance(i, ToolCallDelta) for i in items) > 5

    async def test_extra_headers_and_key_are_sent(
        self, fmt: str, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM([Reply(text="hi")]) as llm:
            await make_provider(fmt, llm.base_url, extra_headers={"x-team": "blue"}).complete(
                context(fmt=fmt)
            )
            headers = llm.requests[0].headers
        assert headers["x-team"] == "blue"
        assert "test-key" in (
            headers.get("authorization", "")
            + headers.get("x-api-key", "")
            + headers.get("x-goog-api-key", "")
        )

    async def test_unknown_events_in_a_stream_are_skipped(
        self, fmt: str, make_provider: ProviderFactory
    ) -> None:
        events = FAKE_FORMATS[fmt].stream(Reply(text="steady"), "m", {})
        noise = 'event: brand_new\ndata: {"type":"brand_new","x":1}\n\n'
        chunks = [e.decode() for e in events]
        chunks.insert(2, noise)
        async with FakeLLM([Raw(chunks=chunks)]) as llm:
            items = await collect(make_provider(fmt, llm.base_url), fmt)
        assert assemble(items).message.text == "steady"

    async def test_slow_tokens_still_arrive_in_order(
        self, fmt: str, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM([Reply(text="slow but sure", chunk=2, delay=0.005)]) as llm:
            items = await collect(make_provider(fmt, llm.base_url), fmt)
        assert assemble(items).message.text == "slow but sure"

    async def test_a_slow_consumer_still_gets_everything(
        self, fmt: str, make_provider: ProviderFactory
    ) -> None:
        """Nothing is read ahead of the consumer; a slow one loses nothing."""
        async with FakeLLM([Reply(text="x" * 400, chunk=1)]) as llm:
            provider = make_provider(fmt, llm.base_url)
            items = []
            async for item in provider.stream(context(fmt=fmt)):
                items.append(item)
                await asyncio.sleep(0)
        assert assemble(items).message.text == "x" * 400

    async def test_consumer_stopping_early_closes_the_stream(
        self, fmt: str, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM([Reply(text="y" * 200, chunk=1), Reply(text="next")]) as llm:
            provider = make_provider(fmt, llm.base_url)
            stream = provider.stream(context(fmt=fmt))
            first = await anext(stream)
            await stream.aclose()  # type: ignore[attr-defined]
            assert first is not None
            assert (await provider.complete(context(fmt=fmt))).message.text == "next"


ERRORS = [
    (Fail(status=401, message="invalid x-api-key"), AuthenticationError),
    (Fail(status=403, message="forbidden"), AuthenticationError),
    (Fail(status=429, message="rate limited", retry_after="7"), RateLimitError),
    (
        Fail(status=400, message="prompt is too long: 210000 tokens > 200000 maximum"),
        ContextTooLongError,
    ),
    (Fail(status=400, message="Unsupported parameter: 'foo'"), BadRequestError),
    (Fail(status=503, message="overloaded"), ServerError),
    (Html(status=502), ServerError),
]


@pytest.mark.parametrize("fmt", FORMATS)
class TestErrors:
    @pytest.mark.parametrize(("step", "cls"), ERRORS)
    async def test_error_status_is_typed_for_complete_and_stream(
        self,
        fmt: str,
        step: Fail | Html,
        cls: type[ProviderHTTPError],
        make_provider: ProviderFactory,
    ) -> None:
        async with FakeLLM([step, step]) as llm:
            provider = make_provider(fmt, llm.base_url)
            with pytest.raises(cls) as complete_error:
                await provider.complete(context(fmt=fmt))
            with pytest.raises(cls):
                await collect(provider, fmt)
        message = step.message if isinstance(step, Fail) else "HTML page: 502 Bad Gateway"
        assert message in str(complete_error.value)
        if isinstance(step, Fail) and step.retry_after:
            assert complete_error.value.retry_after == 7.0

    @pytest.mark.parametrize(
        "step", [Html(status=200), Empty(), Raw(content_type="application/json", chunks=["{oops"])]
    )
    async def test_unreadable_200_answer_is_a_protocol_error(
        self, fmt: str, step: Html | Empty | Raw, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM([step]) as llm:
            with pytest.raises(ProviderProtocolError):
                await make_provider(fmt, llm.base_url).complete(context(fmt=fmt))

    @pytest.mark.parametrize(
        "step",
        [Empty(content_type="text/event-stream"), Empty(), Raw(chunks=["data: {not json\n\n"])],
    )
    async def test_unreadable_stream_is_a_protocol_error(
        self, fmt: str, step: Empty | Raw, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM([step, step]) as llm:  # an empty stream is asked again whole
            with pytest.raises(ProviderProtocolError):
                await collect(make_provider(fmt, llm.base_url), fmt)

    async def test_connection_cut_mid_stream_ends_with_connection_lost(
        self, fmt: str, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM(
            [Reply(text="a long answer that never ends", chunk=2, cut_after=4)]
        ) as llm:
            items = await collect(make_provider(fmt, llm.base_url), fmt)
        assert isinstance(items[-1], ConnectionLost)
        assert not any(isinstance(i, FinishReason) for i in items)

    async def test_connection_cut_in_a_whole_answer_is_a_transport_error(
        self, fmt: str, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM([Reply(text="cut", cut_after=0)]) as llm:
            with pytest.raises(ProviderTransportError):
                await make_provider(fmt, llm.base_url).complete(context(fmt=fmt))

    async def test_silence_mid_stream_ends_with_connection_lost(
        self, fmt: str, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM([Reply(text="abcdef", chunk=1, delay=2.0)]) as llm:
            items = await collect(make_provider(fmt, llm.base_url, timeout_secs=0.2), fmt)
        assert isinstance(items[-1], ConnectionLost)
        assert "in time" in items[-1].message

    async def test_silence_before_a_whole_answer_is_a_timeout(
        self, fmt: str, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM(
            [Raw(content_type="application/json", chunks=["{", "}"], delay=2.0)]
        ) as llm:
            with pytest.raises(ProviderTimeoutError):
                await make_provider(fmt, llm.base_url, timeout_secs=0.2).complete(context(fmt=fmt))

    async def test_refused_connection_is_a_transport_error(
        self, fmt: str, make_provider: ProviderFactory
    ) -> None:
        llm = await FakeLLM().start()
        base = llm.base_url
        await llm.close()
        with pytest.raises(ProviderTransportError):
            await make_provider(fmt, base).complete(context(fmt=fmt))
        with pytest.raises(ProviderTransportError):
            await collect(make_provider(fmt, base), fmt)


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "openai_responses"])
async def test_arguments_that_never_become_json_reach_the_runtime_raw(
    fmt: str, make_provider: ProviderFactory
) -> None:
    reply = Reply(tool_calls=[Call(name="get_weather", arguments='{"city": "Par')])
    async with FakeLLM([reply]) as llm:
        call = assemble(await collect(make_provider(fmt, llm.base_url), fmt)).tool_calls[0]
    assert call.invalid_arguments == '{"city": "Par'
    assert call.arguments == {}


async def test_stream_answered_with_one_json_document_still_yields_items(
    make_provider: ProviderFactory,
) -> None:
    whole = msgspec.json.encode(FAKE_FORMATS["openai"].whole(Reply(text="whole"), "m")).decode()
    async with FakeLLM([Raw(content_type="application/json", chunks=[whole])]) as llm:
        items = await collect(make_provider("openai", llm.base_url), "openai")
    assert assemble(items).message.text == "whole"


async def test_mid_stream_error_event_is_raised_typed(make_provider: ProviderFactory) -> None:
    chunks = [
        'event: message_start\ndata: {"type":"message_start",'
        '"message":{"id":"m","usage":{"input_tokens":1}}}\n\n',
        'event: error\ndata: {"type":"error",'
        '"error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
    ]
    async with FakeLLM([Raw(chunks=chunks)]) as llm:
        with pytest.raises(ServerError, match="Overloaded"):
            await collect(make_provider("anthropic", llm.base_url), "anthropic")


async def test_no_httpx_exception_escapes(make_provider: ProviderFactory) -> None:
    provider = make_provider("openai", "http://127.0.0.1:1")
    with pytest.raises(ProviderError) as caught:
        await provider.complete(context())
    assert not type(caught.value).__module__.startswith("httpx")
