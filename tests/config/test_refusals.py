"""Config that used to be accepted and fail later is refused by `config check` and start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxydra.catalog import load_catalog
from oxydra.config import ConfigSources, load_agent_config
from oxydra.core.errors import ConfigError
from tests.test_cli import run

KEY = {"OPENAI_API_KEY": "sk-x"}


def _check(tmp_path: Path, toml: str | bytes, mode: str = "config") -> str:
    folder = tmp_path / ".oxydra"
    folder.mkdir(exist_ok=True)
    target = folder / "agent.toml"
    target.write_bytes(toml if isinstance(toml, bytes) else toml.encode())
    args = ["config", "check"] if mode == "config" else ["ask", "hello"]
    out = run(args, tmp_path, KEY)
    assert out.returncode != 0, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    return out.stdout + out.stderr


@pytest.mark.parametrize("mode", ["config", "ask"])
def test_deeply_nested_arrays_are_refused_without_a_traceback(tmp_path: Path, mode: str) -> None:
    text = _check(tmp_path, "[gateway]\nallowed_origins = " + "[" * 5000 + "]" * 5000, mode)
    assert "agent.toml" in text and "nested" in text


def test_moderately_deep_nesting_names_the_key(tmp_path: Path) -> None:
    text = _check(tmp_path, "[gateway]\nallowed_origins = " + "[" * 40 + "]" * 40)
    assert "gateway.allowed_origins" in text and "32 levels" in text


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com/v1", "http://", "https://h:99999"])
def test_a_base_url_that_is_not_http_is_refused(tmp_path: Path, url: str) -> None:
    text = _check(
        tmp_path, f'[providers.registry.openai]\nprovider_type = "openai"\nbase_url = "{url}"\n'
    )
    assert "providers.registry.openai.base_url" in text


def test_line_breaks_in_extra_headers_are_refused(tmp_path: Path) -> None:
    text = _check(
        tmp_path,
        '[providers.registry.openai]\nprovider_type = "openai"\n'
        '[providers.registry.openai.extra_headers]\n"X-Team" = "a\\r\\nX-Injected: 1"\n',
    )
    assert "extra_headers" in text and "X-Team" in text and "control character" in text


def test_a_missing_system_prompt_file_is_refused_at_check(tmp_path: Path) -> None:
    text = _check(
        tmp_path,
        '[agents.researcher]\nsystem_prompt_file = "/nonexistent/prompt.md"\n',
    )
    assert "agents.researcher.system_prompt_file" in text and "/nonexistent/prompt.md" in text


def test_invalid_utf8_is_refused_not_replaced(tmp_path: Path) -> None:
    text = _check(tmp_path, b'[selection]\nmodel = "gpt-4o\xff"\n')
    assert "not valid UTF-8" in text and "line 2" in text


@pytest.mark.parametrize("mode", ["config", "ask"])
@pytest.mark.parametrize("value", [str(10**23), "1e23", "-1", '"ten"'])
def test_an_absurd_integer_is_refused_naming_file_key_and_type(
    tmp_path: Path, mode: str, value: str
) -> None:
    text = _check(tmp_path, f"[runtime]\nmax_turns = {value}\n", mode)
    assert ".oxydra/agent.toml" in text and "key 'runtime.max_turns'" in text
    assert "expected int" in text


@pytest.mark.parametrize("how", ["env", "set"])
def test_an_absurd_integer_from_env_or_set_names_its_source(tmp_path: Path, how: str) -> None:
    big = str(10**23)
    env = {**KEY, "OXYDRA__RUNTIME__MAX_TURNS": big} if how == "env" else KEY
    args = ["ask", "hi"] if how == "env" else ["ask", "--set", f"runtime.max_turns={big}", "hi"]
    out = run(args, tmp_path, env)
    where = "env OXYDRA__RUNTIME__MAX_TURNS" if how == "env" else "--set runtime.max_turns"
    assert out.returncode == 2 and where in out.stderr and "expected int" in out.stderr


def test_a_registry_max_context_tokens_is_honoured_for_a_catalog_model(tmp_path: Path) -> None:
    from oxydra.catalog import catalog_provider_for

    loaded = load_agent_config(
        ConfigSources(
            home=tmp_path,
            cwd=tmp_path,
            environ=KEY,
            overrides=[
                "providers.registry.openai.max_context_tokens=4000",
                "selection.model=gpt-4o",
            ],
        )
    ).config
    entry = loaded.providers.registry["openai"]
    catalog = load_catalog()
    known = catalog.get(catalog_provider_for(entry), "gpt-4o")
    assert known is not None and known.limit.context != 4000, "the catalog knows the model"
    descriptor = catalog.resolve(catalog_provider_for(entry), "gpt-4o", hints=entry)
    assert catalog.caps("openai", "gpt-4o", descriptor).max_context_tokens == 4000


def test_the_same_refusals_stop_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        load_agent_config(
            ConfigSources(
                home=tmp_path,
                cwd=tmp_path,
                environ=KEY,
                overrides=["providers.registry.openai.base_url=ftp://x"],
            )
        )
