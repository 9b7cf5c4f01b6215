"""Four-tier key resolution, and secrets that never reach `config show` or the logs."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from oxydra.config import (
    ConfigSources,
    ProviderEntry,
    load_agent_config,
    render_config,
    resolve_api_key,
)
from oxydra.config.show import is_secret_key
from oxydra.core.log import configure_logging, get_logger

OPENAI = ProviderEntry(provider_type="openai", api_key_env="MY_KEY")


class TestTiers:
    @pytest.mark.parametrize(
        ("entry", "environ", "expected"),
        [
            (
                ProviderEntry(provider_type="openai", api_key=" inline ", api_key_env="MY_KEY"),
                {"MY_KEY": "named", "OPENAI_API_KEY": "std", "API_KEY": "any"},
                ("inline", "api_key"),
            ),
            (
                OPENAI,
                {"MY_KEY": "named", "OPENAI_API_KEY": "std", "API_KEY": "any"},
                ("named", "env:MY_KEY"),
            ),
            (OPENAI, {"OPENAI_API_KEY": "std", "API_KEY": "any"}, ("std", "env:OPENAI_API_KEY")),
            (OPENAI, {"API_KEY": "any"}, ("any", "env:API_KEY")),
            (OPENAI, {}, (None, "none")),
            (OPENAI, {"MY_KEY": "  ", "OPENAI_API_KEY": "std"}, (None, "env:MY_KEY")),
            (
                ProviderEntry(provider_type="anthropic"),
                {"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o"},
                ("a", "env:ANTHROPIC_API_KEY"),
            ),
            (
                ProviderEntry(provider_type="gemini"),
                {"GEMINI_API_KEY": "g"},
                ("g", "env:GEMINI_API_KEY"),
            ),
            (
                ProviderEntry(provider_type="openai_responses"),
                {"OPENAI_API_KEY": "o"},
                ("o", "env:OPENAI_API_KEY"),
            ),
            (
                ProviderEntry(provider_type="openai", api_key=""),
                {"API_KEY": "any"},
                ("any", "env:API_KEY"),
            ),
        ],
        ids=[
            "inline",
            "named-env",
            "standard-env",
            "api-key",
            "none",
            "named-set-but-empty",
            "anthropic",
            "gemini",
            "responses",
            "empty-inline",
        ],
    )
    def test_first_non_empty_tier_wins(
        self, entry: ProviderEntry, environ: dict[str, str], expected: tuple[str | None, str]
    ) -> None:
        assert resolve_api_key(entry, environ) == expected


SECRET = "sk-proj-ZZtopSECRETvalue1234567890"


@pytest.fixture
def secret_setup(tmp_path: Path) -> ConfigSources:
    (tmp_path / ".oxydra").mkdir()
    (tmp_path / ".oxydra" / "agent.toml").write_text(
        f'[providers.registry.openai]\napi_key = "{SECRET}"\n'
        f'extra_headers = {{ Authorization = "Bearer {SECRET}", X-Title = "mine" }}\n'
        f'[gateway]\nauth_token = "{SECRET}"\n'
    )
    return ConfigSources(
        system_dir=tmp_path / "etc",
        home=tmp_path / "h",
        cwd=tmp_path,
        environ={"OXYDRA__MEMORY__AUTH_TOKEN": SECRET},
    )


class TestNoLeaks:
    def test_config_show_masks_every_secret(self, secret_setup: ConfigSources) -> None:
        text = render_config(load_agent_config(secret_setup))
        assert SECRET not in text
        assert text.count("********") == 4
        assert '"mine"' in text

    @pytest.mark.parametrize(
        ("key", "secret"),
        [
            ("providers.registry.x.api_key", True),
            ("gateway.auth_token", True),
            ("providers.registry.x.api_key_env", False),
            ("providers.registry.x.extra_headers.X-Api-Key", True),
            ("providers.registry.x.extra_headers.X-Title", False),
            ("runtime.max_tokens", False),
        ],
    )
    def test_secret_keys_are_recognised(self, key: str, secret: bool) -> None:
        assert is_secret_key(key) is secret

    def test_loading_logs_no_secret(self, secret_setup: ConfigSources) -> None:
        configure_logging("debug")
        stream = io.StringIO()
        handler = logging.getLogger("oxydra").handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        try:
            loaded = load_agent_config(secret_setup)
            get_logger("oxydra.test").debug("loaded", extra={"oxy": {"layers": loaded.layers}})
        finally:
            configure_logging("warning")
        assert "loaded" in stream.getvalue() and SECRET not in stream.getvalue()

    def test_config_show_subprocess_prints_no_secret(self, tmp_path: Path) -> None:
        (tmp_path / ".oxydra").mkdir()
        (tmp_path / ".oxydra" / "agent.toml").write_text(
            f'[providers.registry.openai]\napi_key = "{SECRET}"\n'
        )
        env = {"HOME": str(tmp_path / "h"), "PATH": "/usr/bin:/bin", "OXYDRA_LOG": "debug"}
        out = subprocess.run(
            [sys.executable, "-m", "oxydra", "config", "show"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert SECRET not in out.stdout + out.stderr and "********" in out.stdout
