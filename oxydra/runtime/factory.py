"""Assemble a runtime from config: provider route, tools, memory, prompt, ledger.

`ask`, `vm` and the scheduler all build their runtime here, so an interactive turn and a
scheduled one run with the same policy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oxydra.catalog import ModelCatalog, catalog_provider_for, load_catalog
from oxydra.config.persona import Persona, load_persona
from oxydra.config.schema import AgentConfig, AgentDefinition
from oxydra.core.errors import ConfigError
from oxydra.core.log import get_logger
from oxydra.runtime.background import BackgroundRunner
from oxydra.runtime.conversation import ConversationStore
from oxydra.runtime.delegation import ChildSessions
from oxydra.runtime.ledger import CostLedger
from oxydra.runtime.loop import AgentRuntime, Retriever
from oxydra.runtime.prompt import build_system_prompt
from oxydra.runtime.registry_tools import RegistryExecutor
from oxydra.runtime.turnlock import SessionLocks
from oxydra.security import Workspace
from oxydra.tools import (
    LocalShellSession,
    ScratchpadStore,
    ShellSession,
    Tool,
    ToolRegistry,
    default_registry,
    default_tools,
    local_shell,
    select_file_backend,
    user_profile_tool,
)
from oxydra.tools.skills import (
    ShellView,
    SkillRegistry,
    Source,
    discover,
    local_view,
    sidecar_view,
    skill_sources,
    skill_tools,
)

if TYPE_CHECKING:
    import httpx

SKILL_TOOLS = ("skill_create", "skill_load", "skill_read", "skill_update")
_audit = logging.getLogger("oxydra.audit")
_log = get_logger(__name__)

WORKSPACE_DIRS = ("shared", "tmp", "vault", "logs", "ipc", ".oxydra")


def provision_workspace(path: Path) -> Path:
    """Create a user's workspace layout (owner-only) if missing; returns it resolved."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in WORKSPACE_DIRS:
        (path / name).mkdir(exist_ok=True, mode=0o700)
    return path.resolve()


@dataclass
class Agent:
    """A built runtime and what must be closed with it."""

    runtime: AgentRuntime
    catalog: ModelCatalog
    workspace: Workspace
    closers: list[Any] = field(default_factory=list)
    registry: ToolRegistry | None = None

    async def aclose(self) -> None:
        """Close the provider's connections and anything else opened."""
        for closer in reversed(self.closers):
            result = closer()
            if hasattr(result, "__await__"):
                await result


def build_agent(
    config: AgentConfig,
    *,
    workspace: Path,
    environ: Mapping[str, str] | None = None,
    store: ConversationStore | None = None,
    extra_tools: list[Tool] | None = None,
    retriever: Retriever | None = None,
    scratchpad: ScratchpadStore | None = None,
    shell_available: bool = True,
    http_client: httpx.AsyncClient | None = None,
    catalog: ModelCatalog | None = None,
    shell: ShellSession | None = None,
    persona: Persona | None = None,
    skill_dirs: list[Source] | None = None,
    child_sessions: ChildSessions | None = None,
    background_jobs: BackgroundRunner | None = None,
) -> Agent:
    """The runtime for `config` working in `workspace` (already provisioned).

    `shell` runs `shell_exec` commands elsewhere (the shell daemon of a container guest);
    without it, and with `shell_available`, they run as local processes in the workspace.
    The persona is read as each session starts (so an operator's edit applies from the next
    session), unless a fixed `persona` is given; skills are discovered again as each session
    starts too, and a local shell may then read (never change) their folders; `skill_dirs`
    replaces the standard skill sources; `child_sessions` records each delegation's session
    under its parent; `background_jobs` lets `delegate_to_agent` run children in the
    background (the `vm`).
    """
    from oxydra.providers import build_reliable_provider

    env = dict(os.environ if environ is None else environ)
    catalog = catalog or load_catalog(env)
    provider = build_reliable_provider(config, env, catalog, http_client)
    entry = config.providers.registry[config.selection.provider]
    namespace, model = catalog_provider_for(entry), config.selection.model
    jail = Workspace.for_user(workspace)
    local = None
    if shell is None and shell_available and config.tools.shell.enabled:
        local = local_shell(config, jail, env)
    tools = default_tools(
        config,
        jail if shell_available else None,
        environ=env,
        scratchpad=scratchpad,
        shell=(shell or local) if shell_available else None,
    )
    registry = default_registry(
        config, [*tools, *(extra_tools or [])], environ=env, workspace=workspace
    )
    sources = skill_dirs if skill_dirs is not None else skill_sources(workspace)
    view = local_view if local is not None else sidecar_view if shell is not None else None
    skills = _add_skills(registry, workspace, env, sources, shell=local, view=view)
    registry.register(user_profile_tool(workspace / ".oxydra" / "USER.md"))
    backend = select_file_backend(jail, config.tools.isolation)
    shell_on = shell_available and "shell_exec" in registry

    def prompt_with(found: Persona, index: str) -> str:
        return build_system_prompt(
            config, shell_available=shell_on, persona=found, skills_index=index
        )

    def session_prompt() -> str:
        found = persona if persona is not None else load_persona(workspace)
        if persona is None:
            _audit_persona(found)
        _refresh_skills(skills, registry, workspace, env, sources, shell=local)
        return prompt_with(found, skills.index())

    runtime = AgentRuntime(
        provider=provider,
        tools=RegistryExecutor(registry, lambda _user: backend),
        config=config.runtime,
        provider_id=config.selection.provider,
        model=model,
        system_prompt=prompt_with(persona if persona is not None else Persona(), skills.index()),
        store=store,
        ledger=CostLedger(lambda usage: catalog.cost_usd(namespace, model, usage)),
        retriever=retriever,
        session_prompt=session_prompt,
        turn_locks=SessionLocks(workspace / "ipc", on_wait=_tell_waiting),
    )
    if config.agents:
        _add_delegation(
            config, registry, runtime, env, catalog, http_client, namespace, child_sessions,
            background_jobs,
        )  # fmt: skip
    closers: list[Any] = [provider.aclose]
    if shell is not None and shell_available:
        closers.append(shell.close)
    return Agent(
        runtime=runtime, catalog=catalog, workspace=jail, closers=closers, registry=registry
    )


def _tell_waiting(session_id: str) -> None:
    _log.info("session %s: waiting for a turn another process runs in it", session_id)


def _audit_persona(persona: Persona) -> None:
    """Record which persona files a session starts with, by hash."""
    files = {f.name: f"{f.sha256[:16]} {f.path}" for f in persona.files()}
    _audit.info("session persona", extra={"oxy": {"audit": "persona_loaded", **files}})


def _add_skills(
    registry: ToolRegistry,
    workspace: Path,
    env: Mapping[str, str],
    sources: list[Source],
    *,
    shell: LocalShellSession | None,
    view: ShellView | None,
) -> SkillRegistry:
    """Discover the skills and register the skill tools."""
    skills = SkillRegistry([], shell_view=view if "shell_exec" in registry else None)
    _refresh_skills(skills, registry, workspace, env, sources, shell=shell)
    registry.register_all(skill_tools(skills, workspace / "skills"))
    return skills


def _refresh_skills(
    skills: SkillRegistry,
    registry: ToolRegistry,
    workspace: Path,
    env: Mapping[str, str],
    sources: list[Source],
    *,
    shell: LocalShellSession | None,
) -> None:
    """Find the skills again (a session starts) and let the local shell read their folders.

    `requires` is checked against the tools registered now, MCP tools that arrived since the
    runtime was built included.
    """
    found = discover(sources, workspace=workspace)
    skills.refresh(found, tools=[*registry.names, *SKILL_TOOLS], environ=env)
    if shell is not None:
        shell.set_read_only(skills.folders())
    loaded = {n: f"{s.sha256[:16]} {s.source}" for n, s in sorted(skills.loadable.items())}
    _audit.info("skills in force", extra={"oxy": {"audit": "skills_loaded", **loaded}})


def _add_delegation(
    config: AgentConfig,
    registry: Any,
    runtime: AgentRuntime,
    env: dict[str, str],
    catalog: ModelCatalog,
    http_client: httpx.AsyncClient | None,
    namespace: str,
    children: ChildSessions | None = None,
    jobs: BackgroundRunner | None = None,
) -> None:
    """Register `delegate_to_agent` for `[agents]`; each delegation gets a runtime of its
    agent narrowed to the brief's tools (`delegation.py`, rule 2)."""
    from oxydra.providers import build_reliable_provider
    from oxydra.runtime.delegation import NAME, check_agent_tools, delegate_tool
    from oxydra.tools.mcp import server_prefix

    known = [n for n in registry.names if n != NAME]
    later = tuple(server_prefix(server) for server in config.mcp.servers)
    check_agent_tools(config.agents, known, later=later)
    for agent_name, definition in config.agents.items():
        if definition.soul_file and not Path(definition.soul_file).expanduser().is_file():
            raise ConfigError(
                f"agent '{agent_name}': soul_file {definition.soul_file} does not exist",
                key=f"agents.{agent_name}.soul_file",
            )
    executor = runtime.tools
    assert isinstance(executor, RegistryExecutor)
    routes: dict[str, tuple[Any, str, str, CostLedger]] = {}

    def route(name: str, agent: AgentDefinition) -> tuple[Any, str, str, CostLedger]:
        """The agent's provider, model and ledger: built on first use and kept."""
        if name not in routes:
            provider, provider_id, model = runtime.provider, runtime.provider_id, runtime.model
            child_ns = namespace
            if agent.selection is not None:
                child_ns = catalog_provider_for(config.providers.registry[agent.selection.provider])
                provider_id, model = agent.selection.provider, agent.selection.model
                provider = build_reliable_provider(
                    config, env, catalog, http_client, provider=provider_id, model=model
                )
            price = CostLedger(lambda usage: catalog.cost_usd(child_ns, model, usage))
            routes[name] = (provider, provider_id, model, price)
        return routes[name]

    def runtime_for(
        name: str, agent: AgentDefinition, prompt: str, scope: frozenset[str]
    ) -> AgentRuntime:
        if agent.soul_file:
            soul = load_persona(soul_file=Path(agent.soul_file).expanduser()).soul
            assert soul is not None  # load_persona raises when soul_file is missing
            prompt = f"{prompt}\n\n## Persona\n{soul.text}"
        provider, provider_id, model, ledger = route(name, agent)
        return AgentRuntime(
            provider=provider,
            tools=executor.only(scope),
            config=config.runtime,
            provider_id=provider_id,
            model=model,
            system_prompt=prompt,
            store=runtime.store,
            ledger=ledger,
            turn_locks=runtime.turn_locks,
        )

    def offered() -> frozenset[str]:
        return frozenset(d.name for d in executor.schemas()) - {NAME}

    timeout = float(config.runtime.turn_deadline_secs or 600)
    registry.register(
        delegate_tool(
            config.agents,
            runtime_for,
            offered,
            timeout=timeout,
            max_per_turn=config.runtime.max_subagents_per_turn,
            children=children,
            jobs=jobs,
            charge=runtime.ledger.absorb,
        )
    )
