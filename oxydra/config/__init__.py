"""Config: layered loading of `agent.toml`, `runner.toml` and `users/<id>.toml`."""

from oxydra.config.credentials import (
    STANDARD_KEY_ENV,
    is_local_url,
    key_required,
    key_variables,
    resolve_api_key,
)
from oxydra.config.loader import ConfigSources, LoadedConfig, load_agent_config, load_toml_struct
from oxydra.config.runner_schema import RunnerConfig, UserConfig
from oxydra.config.schema import AgentConfig, ProviderEntry
from oxydra.config.show import MASK, is_secret_key, render_config

__all__ = [
    "AgentConfig",
    "ConfigSources",
    "LoadedConfig",
    "MASK",
    "ProviderEntry",
    "RunnerConfig",
    "STANDARD_KEY_ENV",
    "UserConfig",
    "is_local_url",
    "is_secret_key",
    "key_required",
    "key_variables",
    "load_agent_config",
    "load_toml_struct",
    "render_config",
    "resolve_api_key",
]
