"""`runner.toml` and `users/<id>.toml`: the host side's config, as in the Rust version."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from oxydra.core.tiers import SandboxTier

Positive = Annotated[int, msgspec.Meta(gt=0)]


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every runner config section: unknown keys are errors."""


class GuestImages(_Section):
    """Images and templates the container and micro_vm tiers start."""

    oxydra_vm: str = "oxydra-vm:latest"
    shell_vm: str = "shell-vm:latest"
    firecracker_oxydra_vm_config: str | None = None
    firecracker_shell_vm_config: str | None = None
    firecracker_binary: str | None = None


class RunnerUserEntry(_Section):
    """Where a user's own runner file lives (relative to runner.toml's directory)."""

    config_path: str


class RunnerWeb(_Section):
    """The web configurator."""

    enabled: bool = True
    bind: str = "127.0.0.1:9400"
    auth_mode: Literal["disabled", "token"] = "disabled"
    auth_token_env: str | None = None
    auth_token: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None


class RunnerConfig(_Section):
    """The whole of `runner.toml`."""

    config_version: str = "1.0.1"
    workspace_root: str = "workspaces"
    default_tier: SandboxTier = SandboxTier.MICRO_VM
    guest_images: GuestImages = msgspec.field(default_factory=GuestImages)
    users: dict[str, RunnerUserEntry] = {}
    web: RunnerWeb = msgspec.field(default_factory=RunnerWeb)


class Mounts(_Section):
    """Host directories for the three virtual roots (default `<ws>/{shared,tmp,vault}`)."""

    shared: str | None = None
    tmp: str | None = None
    vault: str | None = None


class Resources(_Section):
    """Limits applied to the user's guest."""

    max_vcpus: Positive | None = None
    max_memory_mib: Positive | None = None
    max_processes: Positive | None = None


class Behavior(_Section):
    """Per-user behaviour; shell and browser flags can only restrict."""

    sandbox_tier: SandboxTier | None = None
    shell_enabled: bool | None = None
    browser_enabled: bool | None = None
    timezone: str = "UTC"


class TelegramSender(_Section):
    """An authorised Telegram sender; `person` (ours) names the `[[people]]` entry it is."""

    platform_ids: list[str]
    display_name: str | None = None
    person: str | None = None


class TelegramChannel(_Section):
    """The Telegram adapter; `api_base_url` (ours) serves tests and self-hosted Bot APIs."""

    enabled: bool = False
    bot_token_env: str | None = None
    polling_timeout_secs: Positive = 30
    max_message_length: Annotated[int, msgspec.Meta(ge=64, le=4096)] = 4096
    senders: list[TelegramSender] = []
    api_base_url: str = "https://api.telegram.org"


class OpenAIChannel(_Section):
    """The OpenAI-compatible HTTP endpoint (ours): `POST /v1/chat/completions`."""

    enabled: bool = False
    bind: str = "127.0.0.1:0"


class Person(_Section):
    """One person, reachable from several channels (ours; see docs/channels.md).

    `id` is the person's user id in the gateway: their sessions, notes and retrieval are
    theirs alone. The `vm`'s own user (the gateway token's) is the person whose `id` is that
    user id. `trusted` (default: true for that user, false for others) says whether their
    chat messages may steer high-impact tools without a yes; `tools` limits the tools they
    may use (None: all), `max_cost_usd_per_day` their spend; `api_key_env` names the
    variable holding their key for the OpenAI-compatible endpoint.
    """

    id: str
    display_name: str | None = None
    telegram: list[str] = []
    trusted: bool | None = None
    tools: list[str] | None = None
    max_cost_usd_per_day: Annotated[float, msgspec.Meta(gt=0)] | None = None
    api_key_env: str | None = None


class UserChannels(_Section):
    """External chat channels of one user."""

    telegram: TelegramChannel | None = None
    openai: OpenAIChannel | None = None


class UserConfig(_Section):
    """The whole of `users/<id>.toml`."""

    config_version: str = "1.0.1"
    mounts: Mounts = msgspec.field(default_factory=Mounts)
    resources: Resources = msgspec.field(default_factory=Resources)
    credential_refs: dict[str, str] = {}
    behavior: Behavior = msgspec.field(default_factory=Behavior)
    channels: UserChannels = msgspec.field(default_factory=UserChannels)
    people: list[Person] = []
