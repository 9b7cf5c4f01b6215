"""Everything a guest runs, opened and closed together: store, runtime, scheduler.

The conversation log always persists (it is what makes `ask --session` and a `vm` restart
resume); `[memory] enabled` adds what upstream calls memory: indexing, retrieval injection
and the `memory_*` tools. `[scheduler] enabled` adds the `schedule_*` tools and the
executor, which `vm` starts once its gateway is up (`start_background`); `ask` never runs it.
`[mcp.servers]` start here too (concurrently, each within its startup timeout; one that fails
is reported and skipped), their tools joining the agent's registry; they stop with the agent.
`ask` and `mcp serve` wait for them before the first turn; `vm` starts them in the background
with the gateway (`mcp_background`), so a slow server never delays the gateway past the
runner's wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oxydra import _phases as phases
from oxydra.app.schemas import OWNER_SCHEMAS
from oxydra.config.schema import AgentConfig
from oxydra.gateway import MemoryJobs, MemorySessionRecords
from oxydra.gateway.lifecycle import ChildSessionRecorder
from oxydra.gateway.recall import session_search_tool
from oxydra.memory import HashedEmbedder, Memory
from oxydra.memory.tools import memory_tools
from oxydra.runtime import (
    Agent,
    MemoryConversations,
    MemoryScratchpad,
    build_agent,
    retriever_for,
)
from oxydra.runtime.background import BackgroundRunner
from oxydra.wire.envelope import BootstrapEnvelope

if TYPE_CHECKING:
    from oxydra.scheduler import ScheduleStore
    from oxydra.tools import ShellSession


@dataclass
class Services:
    """The opened parts of a guest.

    Attributes:
        schedules: the schedule store when `[scheduler] enabled`.
        jobs: background delegations (the `vm` only: `ask` ends with its turn).
        background: loops started with the gateway: objects with `start(core)` and
            `aclose()`, or plain callables taking the core.
    """

    agent: Agent
    memory: Memory
    background: list[Any] = field(default_factory=list)
    schedules: ScheduleStore | None = None
    jobs: BackgroundRunner | None = None

    def start_background(self, core: Any) -> None:
        """Start loops that need the gateway (the scheduler executor)."""
        for item in self.background:
            getattr(item, "start", item)(core)

    async def aclose(self) -> None:
        """Stop background loops, close the runtime's connections and the store."""
        if self.jobs is not None:  # stopped unfinished: resumed at the next start
            await self.jobs.aclose()
        for item in self.background:
            stop = getattr(item, "aclose", None)
            if stop is not None:
                await stop()
        await self.agent.aclose()
        await self.memory.close()


def host_id() -> str:
    """This process's id among the hosts sharing a store: `<hostname>:<pid>:<random>`."""
    import socket
    import uuid

    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def open_services(
    config: AgentConfig,
    *,
    user_id: str,
    workspace: Path,
    environ: Mapping[str, str],
    envelope: BootstrapEnvelope | None = None,
    http_client: Any = None,
    mcp_background: bool = False,
    background_jobs: bool = False,
) -> Services:
    """Open the store and build the runtime for one user's workspace.

    `background_jobs` (the `vm`) enables background delegations, stored so a restart
    resumes them; the caller sets their `report` and calls `resume()`.
    """
    enabled = config.memory.enabled
    embedder = None if enabled else HashedEmbedder()
    with phases.phase("store"):
        memory = await Memory.from_config(
            config.memory,
            workspace_root=workspace,
            embedder=embedder,
            schemas=OWNER_SCHEMAS,
        )
    previous = phases.switch("prompt")  # the tools, their schemas, the prompt's parts
    try:
        extra: list[Any] = list(memory_tools(memory)) if enabled else []
        if enabled:  # recall reads what memory indexed from every conversation
            extra.append(session_search_tool(memory, MemorySessionRecords(memory)))
        schedules = _schedule_store(config, memory)
        if schedules is not None:
            from oxydra.scheduler import schedule_tools

            extra += schedule_tools(schedules, config.scheduler)
        shell = (
            envelope is None
            or envelope.startup_status is None
            or (envelope.startup_status.shell_available)
        )
        jobs = (
            BackgroundRunner(MemoryJobs(memory), config.gateway.max_concurrent_turns_per_user)
            if background_jobs
            else None
        )
        agent = build_agent(
            config,
            shell=sidecar_shell(envelope),
            workspace=workspace,
            environ=environ,
            store=MemoryConversations(memory, index=enabled),
            extra_tools=extra,
            retriever=retriever_for(memory, config.memory.retrieval.top_k) if enabled else None,
            scratchpad=MemoryScratchpad(memory),
            shell_available=shell,
            http_client=http_client,
            child_sessions=ChildSessionRecorder(MemorySessionRecords(memory)),
            background_jobs=jobs,
        )
        hub = mcp_hub(config, agent, workspace=workspace, environ=environ)
        if hub is not None and not mcp_background:
            await hub.start()
    except BaseException:
        await memory.close()
        raise
    finally:
        phases.switch(previous)
    services = Services(agent=agent, memory=memory, schedules=schedules, jobs=jobs)
    if hub is not None and mcp_background:
        services.background.append(_BackgroundStart(hub))
    if schedules is not None:
        services.background.append(_executor(config, schedules, agent))
    return services


def mcp_hub(
    config: AgentConfig, agent: Agent, *, workspace: Path, environ: Mapping[str, str]
) -> Any:
    """The hub of `[mcp.servers]` over the agent's registry (not started), or None.

    Each server gets `<workspace>/mcp/<name>` as its own directory: outside the shell's
    `shared` and `tmp`, so neither can tamper with the other.
    """
    if not any(server.enabled for server in config.mcp.servers.values()):
        return None
    from oxydra.tools import egress_allowlist
    from oxydra.tools.mcp import McpHub

    assert agent.registry is not None
    hub = McpHub(
        config.mcp,
        agent.registry,
        environ=environ,
        state_dir=workspace / "mcp",
        egress_allowlist=egress_allowlist(config, environ),
    )
    agent.closers.append(hub.stop)
    return hub


class _BackgroundStart:
    """Starts the MCP servers once the gateway is up, without waiting for them."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.task: asyncio.Task[None] | None = None

    def start(self, _core: Any) -> None:
        self.task = asyncio.ensure_future(self.hub.start())

    async def aclose(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def _schedule_store(config: AgentConfig, memory: Memory) -> ScheduleStore | None:
    if not config.scheduler.enabled:
        return None
    from oxydra.scheduler import ScheduleStore

    if memory.dialect != "postgres":
        return ScheduleStore(memory)
    scheduler = config.scheduler
    lease = max(float(scheduler.run_lease_secs), 3.0 * scheduler.poll_interval_secs)
    return ScheduleStore(memory, holder=host_id(), lease_secs=lease)


def _executor(config: AgentConfig, schedules: ScheduleStore, agent: Agent) -> Any:
    from oxydra.scheduler import SchedulerExecutor

    tools = getattr(agent.runtime.tools, "registry", None)

    def tool_tier(name: str) -> Any:
        tool = tools.get(name) if tools is not None else None
        return tool.safety_tier if tool is not None else None

    return SchedulerExecutor(
        schedules,
        agent.runtime,
        config.scheduler,
        timeout_secs=config.scheduler.run_timeout_secs,
        tool_tier=tool_tier,
    )


def sidecar_shell(envelope: BootstrapEnvelope | None) -> ShellSession | None:
    """The shell daemon's session when the runner gave a Unix-socket sidecar (container tier).

    A process-tier guest gets none and runs commands itself, under its own confinement.
    """
    endpoint = envelope.sidecar_endpoint if envelope is not None else None
    if endpoint is None or endpoint.transport != "unix":
        return None
    from oxydra.tools import DaemonShellSession  # the container tier only: not on ask's path

    return DaemonShellSession(endpoint.address)
