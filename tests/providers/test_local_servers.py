"""Self-hosted OpenAI-compatible servers, against the fake LLM behaving as llama.cpp's did."""

from __future__ import annotations

import logging
import random
from typing import Any

import httpx
import pytest

from oxydra.catalog import ModelCatalog
from oxydra.config.schema import (
    AgentConfig,
    ProviderEntry,
    ProvidersConfig,
    ReliabilityConfig,
    RuntimeConfig,
    Selection,
)
from oxydra.core import Context, FunctionDecl, Message, ModelId, ProviderId, ToolCall
from oxydra.core.errors import ConfigError, ProviderTimeoutError, ServerError
from oxydra.core.stream import Text
from oxydra.providers import build_provider, build_reliable_provider
from oxydra.testing.fake_llm import Call, Fail, FakeLLM, Reply

LOCAL_MODEL = "qwen2.5-0.5b-instruct"
BOUNDED = FunctionDecl(
    name="note",
    description="Save a note.",
    parameters={
        "type": "object",
        "properties": {"text": {"type": "string", "maxLength": 200, "pattern": "^.+$"}},
        "required": ["text"],
    },
)


def local_config(url: str, **entry: Any) -> AgentConfig:
    fields: dict[str, Any] = {"provider_type": "openai", "base_url": url, **entry}
    return AgentConfig(
        selection=Selection(provider="llamacpp", model=LOCAL_MODEL),
        providers=ProvidersConfig(registry={"llamacpp": ProviderEntry(**fields)}),
        reliability=ReliabilityConfig(backoff_base_ms=1, backoff_max_ms=1),
        runtime=RuntimeConfig(turn_timeout_secs=1),
    )


def ctx(*messages: Message, tools: tuple[FunctionDecl, ...] = ()) -> Context:
    return Context(
        provider=ProviderId("llamacpp"),
        model=ModelId(LOCAL_MODEL),
        messages=messages or (Message(role="user", content="hi"),),
        tools=tools,
    )


async def no_sleep(_: float) -> None:
    return None


@pytest.fixture(params=["h1", "httpx"])
async def client(request: pytest.FixtureRequest) -> Any:
    """The endpoint's own transport (None) and a shared httpx client."""
    if request.param == "h1":
        yield None
        return
    async with httpx.AsyncClient() as shared:
        yield shared


class TestLlamaCppServer:
    async def test_a_tool_turn_streams_falls_back_and_sends_what_it_accepts(
        self, catalog: ModelCatalog, client: httpx.AsyncClient
    ) -> None:
        steps = [Reply(tool_calls=[Call(name="note", arguments={"text": "x"})]), Reply(text="ok")]
        async with FakeLLM(steps, server="llamacpp") as llm:
            provider = build_provider("llamacpp", local_config(llm.base_url), {}, catalog, client)
            first = [i async for i in provider.stream(ctx(tools=(BOUNDED,)))]
            assert any(getattr(i, "name", None) == "note" for i in first)
            call = ToolCall(id="c1", name="note", arguments={"text": "x"})
            follow_up = ctx(
                Message(role="user", content="hi"),
                Message(role="assistant", content=None, tool_calls=(call,)),
                Message(role="tool", content="saved", tool_call_id="c1"),
                tools=(BOUNDED,),
            )
            second = [i async for i in provider.stream(follow_up)]
            assert [i.text for i in second if isinstance(i, Text)] == ["ok"]
            llm.assert_done()
        posts = [r.json() for r in llm.requests]
        # stream (empty 200) → whole answer, twice
        assert [bool(p.get("stream")) for p in posts] == [True, False, True, False]  # type: ignore[union-attr]
        assert posts[2]["messages"][1]["content"] == ""  # type: ignore[index]
        sent = posts[0]["tools"][0]["function"]["parameters"]  # type: ignore[index]
        assert sent["properties"]["text"] == {"type": "string"}
        assert all("authorization" not in r.headers for r in llm.requests)
        assert all("max_tokens" not in p for p in posts)  # type: ignore[operator]

    async def test_the_context_window_is_asked_of_the_server(
        self, catalog: ModelCatalog, client: httpx.AsyncClient
    ) -> None:
        async with FakeLLM([Reply(text="hi")], server="llamacpp", context_window=4096) as llm:
            provider = build_provider("llamacpp", local_config(llm.base_url), {}, catalog, client)
            assert provider.capabilities().max_output_tokens is None
            await provider.complete(ctx())
            assert provider.capabilities().max_context_tokens == 4096
            assert [r.path for r in llm.gets] == ["/v1/models"]

    def test_an_output_limit_set_in_the_entry_is_kept(self, catalog: ModelCatalog) -> None:
        config = local_config("http://127.0.0.1:8080", max_output_tokens=512)
        provider = build_provider("llamacpp", config, {}, catalog)
        assert provider.capabilities().max_output_tokens == 512

    async def test_full_dialect_by_choice_reaches_the_grammar_builder_and_is_refused(
        self, catalog: ModelCatalog, client: httpx.AsyncClient
    ) -> None:
        async with FakeLLM([], server="llamacpp") as llm:
            config = local_config(llm.base_url, schema_dialect="full")
            provider = build_provider("llamacpp", config, {}, catalog, client)
            with pytest.raises(ServerError, match="maxLength"):
                await provider.complete(ctx(tools=(BOUNDED,)))

    async def test_the_window_of_a_vllm_model_comes_from_max_model_len(
        self, catalog: ModelCatalog, client: httpx.AsyncClient
    ) -> None:
        async with FakeLLM([Reply(text="hi")], server="vllm", served_model=LOCAL_MODEL) as llm:
            provider = build_provider("llamacpp", local_config(llm.base_url), {}, catalog, client)
            await provider.complete(ctx())
            assert provider.capabilities().max_context_tokens == 8192


class TestKeys:
    def test_a_remote_entry_without_a_key_is_refused(self, catalog: ModelCatalog) -> None:
        config = local_config("https://llm.example.com")
        with pytest.raises(ConfigError, match="no API key"):
            build_provider("llamacpp", config, {}, catalog)

    @pytest.mark.parametrize(
        "url", ["http://localhost:8080", "http://10.0.0.5:8000", "http://[::1]:1234"]
    )
    def test_a_local_or_private_entry_needs_none(self, catalog: ModelCatalog, url: str) -> None:
        provider = build_provider("llamacpp", local_config(url), {}, catalog)
        assert "authorization" not in provider.endpoint.headers


class TestTimeoutsAndErrors:
    async def test_a_slow_whole_answer_is_a_retried_provider_timeout(
        self, catalog: ModelCatalog, client: httpx.AsyncClient
    ) -> None:
        steps = [Reply(text="late", delay=3), Reply(text="in time")]
        async with FakeLLM(steps, server="llamacpp") as llm:
            config = local_config(llm.base_url)
            provider = build_reliable_provider(
                config, {}, catalog, client, sleep=no_sleep, rng=random.Random(1)
            )
            response = await provider.complete(ctx())
        assert response.message.text == "in time"

    async def test_every_attempt_slow_ends_as_a_provider_timeout(
        self, catalog: ModelCatalog, client: httpx.AsyncClient
    ) -> None:
        async with FakeLLM([Reply(text="late", delay=3)] * 3, server="llamacpp") as llm:
            provider = build_reliable_provider(
                local_config(llm.base_url), {}, catalog, client, sleep=no_sleep
            )
            with pytest.raises(ProviderTimeoutError, match="turn_timeout_secs"):
                await provider.complete(ctx())

    async def test_a_404_names_the_url_and_the_retry_log_names_the_route(
        self, catalog: ModelCatalog, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        long_message = "grammar: " + "x" * 2000 + " END"
        steps = [Fail(status=500, message=long_message), Fail(status=404, message="nope")]
        async with FakeLLM(steps) as llm:
            url = f"{llm.base_url}/wrong/v1/chat/completions"
            provider = build_reliable_provider(
                local_config(llm.base_url + "/wrong"), {}, catalog, client, sleep=no_sleep
            )
            with caplog.at_level(logging.WARNING), pytest.raises(Exception) as raised:
                await provider.complete(ctx())
        assert str(raised.value) == f"HTTP 404: nope (llamacpp: {url})"
        retry = next(r for r in caplog.records if r.getMessage().startswith("provider call"))
        fields = retry.oxy  # type: ignore[attr-defined]
        assert fields["provider"] == "llamacpp"
        assert fields["route"] == f"llamacpp/{LOCAL_MODEL}"
        assert fields["error"].endswith(f"END (llamacpp: {url})")


class TestPresets:
    @pytest.mark.parametrize(
        ("name", "port"),
        [("ollama", 11434), ("vllm", 8000), ("lmstudio", 1234), ("llamacpp", 8080)],
    )
    def test_a_preset_needs_nothing_but_a_model(
        self, catalog: ModelCatalog, name: str, port: int
    ) -> None:
        from oxydra.config import ConfigSources, load_agent_config

        overrides = [f"selection.provider={name}", "selection.model=some-local-model"]
        config = load_agent_config(ConfigSources(environ={}, overrides=overrides)).config
        provider = build_reliable_provider(config, {}, catalog).routes[0].provider
        assert provider.endpoint.base_url == f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        assert "authorization" not in provider.endpoint.headers  # type: ignore[attr-defined]
        assert provider.codec.profile.schema_dialect == "compact"  # type: ignore[attr-defined]
        assert provider.capabilities().max_output_tokens is None
