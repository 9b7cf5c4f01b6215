"""The external channels a `vm` runs, from the user's runner file (`users/<id>.toml`).

The runner hands `[channels]` and `[[people]]` over in the bootstrap envelope; a `vm` started
by hand reads the file named by `--user-config`. A channel that cannot start (no token in
the environment, a token Telegram refuses) is reported and skipped: the gateway and every
other channel keep serving.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

import msgspec

from oxydra.channels import Channel, ChannelRegistry
from oxydra.config.people import check_telegram, people_from
from oxydra.config.runner_schema import UserConfig
from oxydra.core.errors import ConfigError
from oxydra.core.log import get_logger
from oxydra.gateway import GatewayCore
from oxydra.memory import Memory
from oxydra.wire.envelope import BootstrapEnvelope
from oxydra.wire.gateway import ChannelStatus

_log = get_logger(__name__)


def user_config(envelope: BootstrapEnvelope | None, path: str | None) -> UserConfig | None:
    """The channel part of the user's runner file: from the envelope, else from `path`.

    Raises:
        ConfigError: naming the source and the key.
    """
    if envelope is not None and (envelope.channels or envelope.people):
        data = {"channels": envelope.channels or {}, "people": envelope.people or []}
        try:
            return msgspec.convert(data, UserConfig)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"bootstrap envelope: channels: {exc}") from exc
    if path is None:
        return None
    from oxydra.config.loader import load_toml_struct

    loaded = load_toml_struct(Path(path), UserConfig)
    assert isinstance(loaded, UserConfig)
    return loaded


def open_channels(
    config: UserConfig | None,
    *,
    user_id: str,
    memory: Memory,
    workspace: Path,
    environ: Mapping[str, str],
    source: str = "users/<id>.toml",
    gateway_token: str | None = None,
    agents: list[str] | None = None,
    lease: Callable[[str], AbstractAsyncContextManager[None]] | None = None,
) -> ChannelsBackground:
    """The enabled channels, not started (`gateway_token` is the owner's API key; `lease`,
    given when hosts share the store, lets one host at a time poll a bot).

    Raises:
        ConfigError: the people or channel config is inconsistent (refused at load).
    """
    served = ChannelsBackground()
    if config is None:
        return served
    people = people_from(user_id, config, source)
    check_telegram(config, source)
    telegram = config.channels.telegram
    if telegram is not None and telegram.enabled:
        assert telegram.bot_token_env is not None
        token = environ.get(telegram.bot_token_env, "").strip()
        if not token:
            _log.error(
                "telegram channel not started: the variable %s (bot_token_env) is not set",
                telegram.bot_token_env,
            )
        else:
            from oxydra.channels.telegram import TelegramChannel

            served.add(TelegramChannel(telegram, token, people, memory, workspace, lease=lease))
    endpoint = config.channels.openai
    if endpoint is not None and endpoint.enabled:
        from oxydra.channels.openai import OpenAIEndpoint

        keys = api_keys(config, user_id, gateway_token, environ)
        served.add(
            OpenAIEndpoint(
                people, keys, ["default", *(agents or [])], memory,
                bind=endpoint.bind, ipc=workspace / "ipc",
            )
        )  # fmt: skip
    return served


def api_keys(
    config: UserConfig, owner: str, gateway_token: str | None, environ: Mapping[str, str]
) -> dict[str, str]:
    """Key -> person for the OpenAI endpoint: the gateway token is the owner's."""
    keys = {gateway_token: owner} if gateway_token else {}
    for person in config.people:
        if person.api_key_env is None:
            continue
        key = environ.get(person.api_key_env, "").strip()
        if not key:
            _log.warning("no API key for %s: %s is not set", person.id, person.api_key_env)
        elif key in keys:
            raise ConfigError(
                f"the API key in {person.api_key_env} is also {keys[key]}'s: keys must differ"
            )
        else:
            keys[key] = person.id
    return keys


class _Served(Channel, Protocol):
    def start(self, core: GatewayCore) -> None: ...

    async def aclose(self) -> None: ...


class ChannelsBackground:
    """The channels of a `vm`: started with the gateway, stopped with the `vm`."""

    def __init__(self) -> None:
        self.registry = ChannelRegistry()
        self._served: list[_Served] = []

    def add(self, channel: _Served) -> None:
        """Register a channel (names are unique)."""
        self.registry.register(channel)
        self._served.append(channel)

    def start(self, core: GatewayCore) -> None:
        """Start every channel against the gateway core."""
        for channel in self._served:
            channel.start(core)

    async def health(self) -> dict[str, ChannelStatus]:
        """Every channel's health, for the gateway's `health_status`."""
        found = await self.registry.health()
        return {n: ChannelStatus(healthy=h.healthy, detail=h.detail) for n, h in found.items()}

    async def aclose(self) -> None:
        """Stop every channel."""
        for channel in self._served:
            await channel.aclose()
