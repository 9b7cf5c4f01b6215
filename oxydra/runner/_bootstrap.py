"""What a guest is handed: the bootstrap envelope, its environment, the gateway token.

Credentials go by reference: the envelope lists the *names* of the variables that hold
provider keys (`credential_env`), never their values. A process or container guest gets
the values in its environment, which is filtered: the runner's own variables do not leak
into the guest wholesale.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec

from oxydra.config.credentials import (
    STANDARD_KEY_ENV,
    key_required,
    key_variables,
    resolve_api_key,
)
from oxydra.config.loader import ConfigSources, load_agent_config
from oxydra.config.runner_schema import UserConfig
from oxydra.config.schema import AgentConfig
from oxydra.core.errors import ConfigError, RunnerError
from oxydra.core.tiers import SandboxTier
from oxydra.runner._config import RunnerContext
from oxydra.runner._selfcmd import shown_command
from oxydra.runner._workspace import UserWorkspace
from oxydra.wire.envelope import (
    BootstrapEnvelope,
    DegradedReason,
    MountPaths,
    ResourceLimits,
    RuntimePolicy,
    SidecarEndpoint,
    StartupStatus,
    validate_envelope,
)

BOOTSTRAP_FILE = "runner_bootstrap.json"
_PASS_THROUGH = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "XDG_CACHE_HOME",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
    "http_proxy", "https_proxy", "no_proxy", "all_proxy",
)  # fmt: skip
_NOT_FORWARDED = ("OXYDRA_BOOTSTRAP_FILE", "OXYDRA_GATEWAY_TOKEN")
NO_KEY_HELP = """\
no API key for provider '{provider}' (model {model}).
  Set one of: OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, or API_KEY
  (for Anthropic or Gemini also pick it: --set selection.provider=anthropic
  --set selection.model=claude-sonnet-4-5), then run again.
  Or use a server on this machine, which needs no key: the presets ollama, vllm, lmstudio
  and llamacpp expect it at its default address (ollama: http://127.0.0.1:11434):
    {start} --set selection.provider=ollama --set selection.model=llama3.2
  (another machine: --set providers.registry.ollama.base_url=http://192.168.1.20:11434)
  (with make: make run RUN_ARGS="--set selection.provider=ollama --set selection.model=llama3.2")
  or put it in .oxydra/agent.toml (or .oxydra/providers.toml):
    [selection]
    provider = "ollama"
    model = "llama3.2"
  Or first look around with a scripted fake model: make demo"""


@dataclass(frozen=True)
class LaunchSpec:
    """The inputs every tier's launcher needs."""

    ctx: RunnerContext
    workspace: UserWorkspace
    token: str
    environ: Mapping[str, str]
    cwd: Path
    home: Path

    @property
    def guest_environ(self) -> dict[str, str]:
        """The runner's environment with `-e` / `--env-file` entries on top."""
        return {**self.environ, **self.ctx.extra_env}


def generate_token() -> str:
    """A fresh gateway token (256 bits)."""
    return secrets.token_urlsafe(32)


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` atomically with `data`, created with `mode` from the start."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_token(workspace: UserWorkspace, token: str) -> None:
    """`<ws>/ipc/gateway-token` (0600) so `oxydra tui` and `runner --tui` find it."""
    write_private(workspace.gateway_token_file, (token + "\n").encode())


def load_guest_config(spec: LaunchSpec) -> AgentConfig:
    """The agent config the guest will load (same layers, same `--set`), read in advance."""
    sources = ConfigSources(
        cwd=spec.cwd, home=spec.home, environ=spec.guest_environ, overrides=spec.ctx.overrides
    )
    try:
        return load_agent_config(sources).config
    except ConfigError as exc:
        raise RunnerError(f"the guest's agent config is invalid: {exc}") from exc


def check_provider_key(config: AgentConfig, environ: Mapping[str, str]) -> None:
    """Stop before launching when the selected provider has no key, saying what to set."""
    name = config.selection.provider
    entry = config.providers.registry.get(name)
    if entry is None:
        raise RunnerError(f"provider '{name}' is not in [providers.registry]")
    key, _ = resolve_api_key(entry, environ)
    if key is None and key_required(entry):
        start = shown_command("runner", "--insecure", "start")
        raise RunnerError(
            NO_KEY_HELP.format(provider=name, model=config.selection.model, start=start)
        )


def credential_names(config: AgentConfig, environ: Mapping[str, str]) -> list[str]:
    """Names of the set variables that hold provider or search credentials."""
    names = {*STANDARD_KEY_ENV.values(), "API_KEY"}
    for entry in config.providers.registry.values():
        names.update(key_variables(entry))
    search = config.tools.web_search
    if search is not None:
        names.update(n for n in (search.api_key_env, search.engine_id_env) if n)
    return sorted(n for n in names if environ.get(n))


def channel_token_names(user: UserConfig, environ: Mapping[str, str]) -> list[str]:
    """Names of the set variables that hold channel secrets: `bot_token_env`, the people's
    `api_key_env`."""
    names = [p.api_key_env for p in user.people if p.api_key_env]
    telegram = user.channels.telegram
    if telegram is not None and telegram.enabled and telegram.bot_token_env:
        names.append(telegram.bot_token_env)
    return [n for n in names if environ.get(n)]


def guest_environment(spec: LaunchSpec, credentials: list[str]) -> dict[str, str]:
    """A filtered environment: basics, `OXYDRA_*`, credentials, `-e` extras, TZ, TMPDIR."""
    source = spec.guest_environ
    env = {k: source[k] for k in _PASS_THROUGH if k in source}
    env.update(
        (k, v) for k, v in source.items() if k.startswith("OXYDRA_") and k not in _NOT_FORWARDED
    )
    env.update((k, source[k]) for k in credentials)
    env.update((k, source[k]) for k in channel_token_names(spec.ctx.user, source))
    env.update(spec.ctx.extra_env)
    env.setdefault("TZ", spec.ctx.user.behavior.timezone)
    env["TMPDIR"] = str(spec.workspace.tmp)
    env["TIKTOKEN_CACHE_DIR"] = str(spec.workspace.internal / "cache" / "tiktoken")
    return env


def startup_status(
    tier: SandboxTier,
    *,
    shell: bool,
    sidecar: bool,
    degraded: list[tuple[str, str]],
    hardening: list[str] | None = None,
) -> StartupStatus:
    """The capabilities the runner could provide, with the reasons for what is missing."""
    return StartupStatus(
        sandbox_tier=tier,
        sidecar_available=sidecar,
        shell_available=shell,
        browser_available=False,
        degraded_reasons=[DegradedReason(code=c, detail=d) for c, d in degraded],
        hardening=hardening or [],
    )


def build_envelope(
    spec: LaunchSpec,
    status: StartupStatus,
    credentials: list[str],
    sidecar: SidecarEndpoint | None = None,
) -> BootstrapEnvelope:
    """The envelope for this launch (validated when encoded)."""
    ws, resources = spec.workspace, spec.ctx.user.resources
    limits = ResourceLimits(
        max_vcpus=resources.max_vcpus,
        max_memory_mib=resources.max_memory_mib,
        max_processes=resources.max_processes,
    )
    policy = RuntimePolicy(
        mounts=MountPaths(shared=str(ws.shared), tmp=str(ws.tmp), vault=str(ws.vault)),
        resources=limits,
        credential_refs=dict(spec.ctx.user.credential_refs) or None,
    )
    return BootstrapEnvelope(
        user_id=spec.ctx.user_id,
        sandbox_tier=status.sandbox_tier,
        workspace_root=str(ws.root),
        sidecar_endpoint=sidecar,
        runtime_policy=policy,
        startup_status=status,
        gateway_token=spec.token,
        credential_env=credentials,
        limits=limits,
        channels={k: v for k, v in msgspec.to_builtins(spec.ctx.user.channels).items() if v}
        or None,
        people=msgspec.to_builtins(spec.ctx.user.people) or None,
    )


def write_bootstrap_file(workspace: UserWorkspace, envelope: BootstrapEnvelope) -> Path:
    """Pretty JSON at `<ws>/ipc/bootstrap/runner_bootstrap.json`, mode 0400."""
    validate_envelope(envelope)
    path = workspace.ipc / "bootstrap" / BOOTSTRAP_FILE
    data = msgspec.json.format(msgspec.json.encode(envelope), indent=2)
    write_private(path, data, mode=0o400)
    return path
