"""build_provider: credentials, catalog validation, base URLs, headers; Responses chaining."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from oxydra.catalog import ModelCatalog
from oxydra.config.schema import ProviderEntry
from oxydra.core import Message
from oxydra.core.errors import BadRequestError, CatalogError, ConfigError
from oxydra.providers import ResponsesProvider, build_provider, parse_fallback
from oxydra.testing.fake_llm import Call, Fail, FakeLLM, Reply
from tests.providers.conftest import ProviderFactory, config_for, context


class TestCredentials:
    @pytest.mark.parametrize(
        ("entry", "environ", "sent"),
        [
            (
                ProviderEntry(provider_type="openai", api_key="inline", api_key_env="MY_KEY"),
                {"MY_KEY": "env", "OPENAI_API_KEY": "std"},
                "inline",
            ),
            (
                ProviderEntry(provider_type="openai", api_key_env="MY_KEY"),
                {"MY_KEY": "env", "OPENAI_API_KEY": "std"},
                "env",
            ),
            (
                ProviderEntry(provider_type="openai"),
                {"OPENAI_API_KEY": "std", "API_KEY": "generic"},
                "std",
            ),
            (ProviderEntry(provider_type="openai"), {"API_KEY": "generic"}, "generic"),
        ],
    )
    async def test_four_tiers_choose_the_key_sent(
        self,
        entry: ProviderEntry,
        environ: dict[str, str],
        sent: str,
        catalog: ModelCatalog,
        http_client: httpx.AsyncClient,
    ) -> None:
        async with FakeLLM([Reply(text="hi")]) as llm:
            entry = msgspec.structs.replace(entry, base_url=llm.base_url)
            provider = build_provider(
                "main", config_for({"main": entry}), environ, catalog, http_client
            )
            await provider.complete(context())
            assert llm.requests[0].headers["authorization"] == f"Bearer {sent}"

    def test_missing_key_names_the_variables_to_set(self, catalog: ModelCatalog) -> None:
        entry = ProviderEntry(provider_type="anthropic", api_key_env="CLAUDE_KEY")
        with pytest.raises(ConfigError) as caught:
            build_provider("claude", config_for({"claude": entry}), {}, catalog)
        text = str(caught.value)
        assert "claude" in text
        for name in ("CLAUDE_KEY", "ANTHROPIC_API_KEY", "API_KEY"):
            assert name in text

    def test_named_variable_set_but_empty_shadows_the_standard_one(
        self, catalog: ModelCatalog
    ) -> None:
        entry = ProviderEntry(provider_type="openai", api_key_env="MY_KEY")
        with pytest.raises(ConfigError):
            build_provider(
                "main",
                config_for({"main": entry}),
                {"MY_KEY": " ", "OPENAI_API_KEY": "std"},
                catalog,
            )

    def test_unknown_entry_lists_the_known_ones(self, catalog: ModelCatalog) -> None:
        config = config_for({"main": ProviderEntry(provider_type="openai", api_key="k")})
        with pytest.raises(ConfigError, match="known: main"):
            build_provider("nope", config, {}, catalog)


class TestCatalog:
    def test_unknown_model_is_refused_with_suggestions(self, catalog: ModelCatalog) -> None:
        config = config_for(
            {"main": ProviderEntry(provider_type="openai", api_key="k")}, model="gpt-4o-minii"
        )
        with pytest.raises(CatalogError) as caught:
            build_provider("main", config, {}, catalog)
        assert "gpt-4o-mini" in str(caught.value)

    def test_skipping_validation_uses_the_entry_hints(self, catalog: ModelCatalog) -> None:
        entry = ProviderEntry(
            provider_type="openai",
            api_key="k",
            base_url="http://127.0.0.1:1",
            max_output_tokens=999,
            reasoning=True,
            input_modalities=["text", "image"],
            attachment=True,
        )
        config = config_for({"local": entry}, model="llama3.2:3b", skip_catalog=True)
        caps = build_provider("local", config, {}, catalog).capabilities()
        assert (caps.max_output_tokens, caps.max_context_tokens, caps.reasoning, caps.tools) == (
            999,
            128_000,
            True,
            True,
        )
        assert caps.input_modalities == ("text", "image") and caps.attachments

    @pytest.mark.parametrize(
        ("provider_type", "model", "namespace"),
        [
            ("openai", "gpt-4o", "openai"),
            ("anthropic", "claude-sonnet-4-5", "anthropic"),
            ("gemini", "gemini-2.5-pro", "google"),
            ("openai_responses", "o3", "openai"),
        ],
    )
    def test_catalog_namespace_defaults_by_type(
        self, provider_type: str, model: str, namespace: str, catalog: ModelCatalog
    ) -> None:
        entry = ProviderEntry(provider_type=provider_type, api_key="k")  # type: ignore[arg-type]
        provider = build_provider("x", config_for({"x": entry}, model=model), {}, catalog)
        assert provider.catalog_provider_id() == namespace

    def test_explicit_catalog_provider_wins(self, catalog: ModelCatalog) -> None:
        entry = ProviderEntry(provider_type="openai", api_key="k", catalog_provider="anthropic")
        provider = build_provider(
            "x", config_for({"x": entry}, model="claude-opus-4-1"), {}, catalog
        )
        assert provider.catalog_provider_id() == "anthropic"


class TestRequests:
    @pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
    async def test_base_url_with_or_without_version(
        self, suffix: str, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM([Reply(text="x")]) as llm:
            await make_provider("openai", llm.base_url + suffix).complete(context())
            assert llm.requests[0].path == "/v1/chat/completions"

    async def test_gemini_base_ending_in_v1beta(self, make_provider: ProviderFactory) -> None:
        async with FakeLLM([Reply(text="x")]) as llm:
            await make_provider("gemini", llm.base_url + "/v1beta").complete(context(fmt="gemini"))
            assert llm.requests[0].path == "/v1beta/models/gemini-2.5-flash:generateContent"

    async def test_anthropic_max_tokens_comes_from_the_catalog(
        self, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM([Reply(text="x"), Reply(text="y")]) as llm:
            provider = make_provider("anthropic", llm.base_url)
            await provider.complete(context(fmt="anthropic"))
            await provider.complete(context(fmt="anthropic", max_output_tokens=321))
            limits = [r.json()["max_tokens"] for r in llm.requests]  # type: ignore[index]
        assert limits == [8192, 321]

    async def test_compatible_servers_get_max_tokens(self, make_provider: ProviderFactory) -> None:
        async with FakeLLM([Reply(text="x")]) as llm:
            await make_provider("openai", llm.base_url).complete(context(max_output_tokens=64))
            assert llm.requests[0].json()["max_tokens"] == 64  # type: ignore[index]

    def test_fallback_spec_keeps_slashes_in_model_names(self) -> None:
        config = config_for({"router": ProviderEntry(provider_type="openai", api_key="k")})
        assert parse_fallback("router/google/gemini-3-flash", config) == (
            "router",
            "google/gemini-3-flash",
        )
        assert parse_fallback("router", config) == ("router", None)
        with pytest.raises(ConfigError):
            parse_fallback("missing/x", config)


class TestResponsesChaining:
    async def test_second_call_of_a_session_sends_only_new_messages(
        self, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM(
            [Reply(tool_calls=[Call(name="f", id="c1")]), Reply(text="done")]
        ) as llm:
            provider = make_provider("openai_responses", llm.base_url)
            assert isinstance(provider, ResponsesProvider)
            first = context(fmt="openai_responses", session_id="s1")
            answer = await provider.complete(first)
            follow = context(
                *first.messages,
                answer.message,
                Message(role="tool", content="42", tool_call_id="c1"),
                fmt="openai_responses",
                session_id="s1",
            )
            await provider.complete(follow)
            bodies = [r.json() for r in llm.requests]
        assert "previous_response_id" not in bodies[0]  # type: ignore[operator]
        assert bodies[1]["previous_response_id"] == answer.response_id  # type: ignore[index]
        assert bodies[1]["input"] == [
            {"type": "function_call_output", "call_id": "c1", "output": "42"}
        ]  # type: ignore[index]
        assert bodies[1]["instructions"] == "Be brief."  # type: ignore[index]

    async def test_refused_chain_falls_back_to_the_full_context_once(
        self, make_provider: ProviderFactory
    ) -> None:
        steps = [
            Reply(text="one"),
            Fail(status=400, message="Previous response not found"),
            Reply(text="two"),
        ]
        async with FakeLLM(steps) as llm:
            provider = make_provider("openai_responses", llm.base_url)
            first = context(fmt="openai_responses", session_id="s")
            answer = await provider.complete(first)
            follow = context(
                *first.messages,
                answer.message,
                Message(role="user", content="more"),
                fmt="openai_responses",
                session_id="s",
            )
            items = [i async for i in provider.stream(follow)]
            bodies = [r.json() for r in llm.requests]
            llm.assert_done()
        assert "previous_response_id" in bodies[1]  # type: ignore[operator]
        assert "previous_response_id" not in bodies[2]  # type: ignore[operator]
        assert len(bodies[2]["input"]) == 3  # type: ignore[index]
        assert items

    async def test_changed_history_is_not_chained(self, make_provider: ProviderFactory) -> None:
        async with FakeLLM([Reply(text="one"), Reply(text="two")]) as llm:
            provider = make_provider("openai_responses", llm.base_url)
            first = context(fmt="openai_responses", session_id="s")
            answer = await provider.complete(first)
            edited = (
                Message(role="system", content="Different."),
                *first.messages[1:],
                answer.message,
                Message(role="user", content="x"),
            )
            await provider.complete(context(*edited, fmt="openai_responses", session_id="s"))
            assert "previous_response_id" not in llm.requests[1].json()  # type: ignore[operator]

    async def test_sessions_do_not_share_chains(self, make_provider: ProviderFactory) -> None:
        async with FakeLLM([Reply(text="a"), Reply(text="b")]) as llm:
            provider = make_provider("openai_responses", llm.base_url)
            first = context(fmt="openai_responses", session_id="s1")
            answer = await provider.complete(first)
            other = context(
                *first.messages,
                answer.message,
                Message(role="user", content="x"),
                fmt="openai_responses",
                session_id="s2",
            )
            await provider.complete(other)
            assert "previous_response_id" not in llm.requests[1].json()  # type: ignore[operator]

    async def test_bad_request_without_a_chain_is_raised(
        self, make_provider: ProviderFactory
    ) -> None:
        async with FakeLLM([Fail(status=400)]) as llm:
            with pytest.raises(BadRequestError):
                await make_provider("openai_responses", llm.base_url).complete(
                    context(fmt="openai_responses", session_id="s")
                )
            assert len(llm.requests) == 1


def test_written_out_base_urls_match_each_format_module() -> None:
    from oxydra.providers import _registry, anthropic, gemini, openai_chat, responses

    modules = {
        "openai": openai_chat,
        "anthropic": anthropic,
        "gemini": gemini,
        "openai_responses": responses,
    }
    assert _registry.DEFAULT_BASE_URLS == {k: m.DEFAULT_BASE_URL for k, m in modules.items()}


def test_building_one_provider_imports_no_other_format() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from oxydra.catalog import load_catalog\n"
        "from oxydra.config.schema import AgentConfig\n"
        "from oxydra.providers import build_provider\n"
        "build_provider('openai', AgentConfig(), {'OPENAI_API_KEY': 'k'}, load_catalog())\n"
        "print(sorted(m for m in sys.modules if m.startswith('oxydra.wire.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "oxydra.wire.openai_chat" in out.stdout
    assert not {"anthropic", "gemini", "responses"} & {
        m.rsplit(".", 1)[1].strip("'") for m in out.stdout.strip("[]\n").split(", ")
    }
