"""ReliableProvider: retries, backoff, jitter, Retry-After and fallbacks, with an injected sleep."""

from __future__ import annotations

import random

import pytest

from oxydra.catalog import ModelCatalog
from oxydra.config.schema import ProviderEntry, ReliabilityConfig
from oxydra.core.errors import BadRequestError, ProviderTransportError, ServerError
from oxydra.core.stream import ConnectionLost, StreamItem, Text
from oxydra.providers import ReliableProvider, Route, backoff_delay, build_reliable_provider
from oxydra.testing.fake_llm import Fail, FakeLLM, Reply
from tests.providers.conftest import ProviderFactory, config_for, context


class Sleeps:
    """An injected sleep that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def reliable(
    provider: object, sleeps: Sleeps, fallbacks: list[Route] | None = None, **config: object
) -> ReliableProvider:
    return ReliableProvider(
        provider,
        ReliabilityConfig(**config),
        fallbacks=fallbacks or [],
        sleep=sleeps,
        rng=random.Random(7),
    )  # type: ignore[arg-type]


async def text_of(items: list[StreamItem]) -> str:
    return "".join(i.text for i in items if isinstance(i, Text))


class TestBackoff:
    @pytest.mark.parametrize(
        ("attempt", "expected"), [(1, 0.25), (2, 0.5), (3, 1.0), (4, 2.0), (9, 2.0)]
    )
    def test_delay_doubles_up_to_the_cap(self, attempt: int, expected: float) -> None:
        assert backoff_delay(attempt, ReliabilityConfig()) == expected

    def test_equal_jitter_stays_between_half_and_the_full_delay_and_varies(self) -> None:
        rng = random.Random(1)
        config = ReliabilityConfig(jitter=True)
        delays = [backoff_delay(2, config, rng) for _ in range(200)]
        assert all(0.25 <= d <= 0.5 for d in delays)
        assert len(set(delays)) > 100


class TestComplete:
    async def test_server_errors_are_retried_with_backoff(
        self, make_provider: ProviderFactory
    ) -> None:
        sleeps = Sleeps()
        async with FakeLLM([Fail(status=500), Fail(status=502), Reply(text="third time")]) as llm:
            response = await reliable(make_provider("openai", llm.base_url), sleeps).complete(
                context()
            )
        assert response.message.text == "third time"
        assert sleeps.delays == [0.25, 0.5]

    async def test_retry_after_is_honoured_as_a_minimum(
        self, make_provider: ProviderFactory
    ) -> None:
        sleeps = Sleeps()
        async with FakeLLM([Fail(status=429, retry_after="3"), Reply(text="ok")]) as llm:
            await reliable(make_provider("anthropic", llm.base_url), sleeps).complete(
                context(fmt="anthropic")
            )
        assert sleeps.delays == [3.0]

    async def test_bad_requests_are_not_retried(self, make_provider: ProviderFactory) -> None:
        sleeps = Sleeps()
        async with FakeLLM([Fail(status=400, message="bad field")]) as llm:
            with pytest.raises(BadRequestError):
                await reliable(make_provider("openai", llm.base_url), sleeps).complete(context())
            assert len(llm.requests) == 1
        assert sleeps.delays == []

    async def test_exhausted_retries_raise_the_last_error(
        self, make_provider: ProviderFactory
    ) -> None:
        sleeps = Sleeps()
        async with FakeLLM([Fail(status=503)] * 3) as llm:
            with pytest.raises(ServerError):
                await reliable(make_provider("openai", llm.base_url), sleeps).complete(context())
            llm.assert_done()
        assert len(sleeps.delays) == 2

    async def test_rate_limit_that_outlasts_retries_moves_to_the_fallback(
        self, make_provider: ProviderFactory
    ) -> None:
        sleeps = Sleeps()
        async with (
            FakeLLM([Fail(status=429)] * 2) as primary,
            FakeLLM([Reply(text="from fallback")]) as backup,
        ):
            fallback = Route(
                make_provider("anthropic", backup.base_url),
                name="anthropic",
                model="claude-3-5-haiku-latest",
            )
            provider = reliable(
                make_provider("openai", primary.base_url), sleeps, [fallback], max_attempts=2
            )
            response = await provider.complete(context())
            assert backup.requests[0].json()["model"] == "claude-3-5-haiku-latest"  # type: ignore[index]
            primary.assert_done()
        assert response.message.text == "from fallback"

    async def test_retry_after_beyond_the_cap_moves_on_without_waiting(
        self, make_provider: ProviderFactory
    ) -> None:
        sleeps = Sleeps()
        async with (
            FakeLLM([Fail(status=429, retry_after="3600")]) as primary,
            FakeLLM([Reply(text="b")]) as backup,
        ):
            provider = reliable(
                make_provider("openai", primary.base_url),
                sleeps,
                [Route(make_provider("openai", backup.base_url))],
            )
            assert (await provider.complete(context())).message.text == "b"
        assert sleeps.delays == []

    async def test_every_route_failing_raises_the_last_error(
        self, make_provider: ProviderFactory
    ) -> None:
        sleeps = Sleeps()
        async with FakeLLM([Fail(status=429)]) as primary, FakeLLM([Fail(status=500)]) as backup:
            provider = reliable(
                make_provider("openai", primary.base_url),
                sleeps,
                [Route(make_provider("openai", backup.base_url))],
                max_attempts=1,
            )
            with pytest.raises(ServerError):
                await provider.complete(context())


class TestStream:
    async def test_errors_before_the_first_item_are_retried(
        self, make_provider: ProviderFactory
    ) -> None:
        sleeps = Sleeps()
        async with FakeLLM([Fail(status=500), Reply(text="streamed")]) as llm:
            items = [
                i
                async for i in reliable(make_provider("gemini", llm.base_url), sleeps).stream(
                    context(fmt="gemini")
                )
            ]
        assert await text_of(items) == "streamed"
        assert sleeps.delays == [0.25]

    async def test_a_stream_lost_before_any_item_is_retried(
        self, make_provider: ProviderFactory
    ) -> None:
        sleeps = Sleeps()
        async with FakeLLM([Reply(text="lost", cut_after=1), Reply(text="again")]) as llm:
            items = [
                i
                async for i in reliable(make_provider("openai", llm.base_url), sleeps).stream(
                    context()
                )
            ]
        assert await text_of(items) == "again"
        assert len(sleeps.delays) == 1

    async def test_a_stream_lost_after_items_reached_the_consumer_is_not_retried(
        self, make_provider: ProviderFactory
    ) -> None:
        sleeps = Sleeps()
        async with FakeLLM(
            [Reply(text="partial answer", chunk=2, cut_after=4), Reply(text="unused")]
        ) as llm:
            items = [
                i
                async for i in reliable(make_provider("openai", llm.base_url), sleeps).stream(
                    context()
                )
            ]
            assert llm.unused_steps() == {"default": 1}
        assert isinstance(items[-1], ConnectionLost)
        assert sleeps.delays == []

    async def test_a_stream_lost_early_is_asked_again_for_a_whole_answer(
        self, make_provider: ProviderFactory
    ) -> None:
        sleeps = Sleeps()
        async with FakeLLM([Reply(text="lost", cut_after=1), Reply(text="whole")]) as llm:
            items = [
                i
                async for i in reliable(
                    make_provider("openai", llm.base_url), sleeps, max_attempts=2
                ).stream(context())
            ]
            streamed = [r.json().get("stream") for r in llm.requests]
        assert await text_of(items) == "whole"
        assert streamed == [True, None] and len(sleeps.delays) == 1  # two attempts, not four

    async def test_a_stream_lost_early_on_every_attempt_raises_the_transport_error(
        self, make_provider: ProviderFactory
    ) -> None:
        sleeps = Sleeps()
        async with FakeLLM([Reply(text="x", cut_after=1)] * 2) as llm:
            with pytest.raises(ProviderTransportError):
                async for _ in reliable(
                    make_provider("openai", llm.base_url), sleeps, max_attempts=2
                ).stream(context()):
                    pass
            assert len(llm.requests) == 2

    async def test_stream_falls_back_after_rate_limits(
        self, make_provider: ProviderFactory
    ) -> None:
        sleeps = Sleeps()
        async with (
            FakeLLM([Fail(status=429, retry_after="1")] * 3) as primary,
            FakeLLM([Reply(text="fb")]) as backup,
        ):
            provider = reliable(
                make_provider("openai", primary.base_url),
                sleeps,
                [
                    Route(
                        make_provider("gemini", backup.base_url),
                        name="gemini",
                        model="gemini-2.5-flash",
                    )
                ],
            )
            items = [i async for i in provider.stream(context())]
        assert await text_of(items) == "fb"
        assert sleeps.delays == [1.0, 1.0]

    async def test_authentication_failure_moves_to_the_fallback(
        self, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM([Fail(status=401)]) as llm, FakeLLM([Reply(text="fb")]) as backup:
            provider = reliable(
                make_provider("openai", llm.base_url),
                Sleeps(),
                [Route(make_provider("openai", backup.base_url))],
            )
            items = [i async for i in provider.stream(context())]
        assert await text_of(items) == "fb"

    async def test_bad_request_in_a_stream_is_raised_without_fallback(
        self, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM([Fail(status=400)]) as llm, FakeLLM([Reply(text="fb")]) as backup:
            provider = reliable(
                make_provider("openai", llm.base_url),
                Sleeps(),
                [Route(make_provider("openai", backup.base_url))],
            )
            with pytest.raises(BadRequestError):
                [i async for i in provider.stream(context())]
            assert backup.requests == []

    async def test_capabilities_come_from_the_primary(self, make_provider: ProviderFactory) -> None:
        provider = reliable(make_provider("anthropic", "http://127.0.0.1:1"), Sleeps())
        assert provider.catalog_provider_id() == "anthropic"
        assert provider.capabilities().max_output_tokens == 8192


async def test_registry_builds_the_fallback_chain(catalog: ModelCatalog) -> None:
    sleeps = Sleeps()
    async with FakeLLM([Fail(status=503)]) as primary, FakeLLM([Reply(text="gem")]) as backup:
        config = config_for(
            {
                "main": ProviderEntry(
                    provider_type="openai", base_url=primary.base_url, api_key="k"
                ),
                "gem": ProviderEntry(provider_type="gemini", base_url=backup.base_url, api_key="g"),
            },
            selection="main",
            model="gpt-4o-mini",
            reliability=ReliabilityConfig(max_attempts=1, fallbacks=["gem/gemini-2.5-flash"]),
        )
        provider = build_reliable_provider(config, {}, catalog, sleep=sleeps)
        response = await provider.complete(context())
        await provider.aclose()
        assert backup.requests[0].path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert response.message.text == "gem"
