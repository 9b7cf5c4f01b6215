"""`oxydra vm`: the guest — runtime, gateway server and scheduler in one asyncio process.

The composition root of a guest: `open_services` builds the runtime and the scheduler, this
module puts the gateway in front of them and starts the executor once the gateway is up.

Start-up: bootstrap envelope (stdin, file, or none) → config → services → listen → write the
endpoint marker `<workspace>/ipc/gateway-endpoint` atomically (and a generated token to
`ipc/gateway-token`, mode 0600) → serve until SIGTERM/SIGINT → cancel turns, close, remove
the marker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import secrets
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from oxydra.config.runner_schema import UserConfig
from oxydra.config.schema import AgentConfig
from oxydra.core.errors import ConfigError, GatewayError, WireError
from oxydra.core.log import get_logger, span
from oxydra.wire.envelope import BootstrapEnvelope, decode_envelope_frame, decode_envelope_json

_log = get_logger(__name__)


def read_bootstrap(args: argparse.Namespace) -> BootstrapEnvelope | None:
    """The envelope from stdin (length-prefixed) or a file (raw JSON), if one was given."""
    path = args.bootstrap_file or os.environ.get("OXYDRA_BOOTSTRAP_FILE")
    try:
        if args.bootstrap_stdin:
            return decode_envelope_frame(sys.stdin.buffer.read())
        if path:
            return decode_envelope_json(Path(path).read_bytes())
    except (WireError, OSError) as exc:
        raise ConfigError(f"cannot start: {exc}") from exc
    return None


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace `path` with `text` in one step, readable only by its owner.

    Raises:
        GatewayError: naming the file and the cause (a full disk, a read-only mount, ...).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with disk_errors(f"write {path}"):
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


_DISK_HINTS = {
    errno.ENOSPC: "the disk is full: free space on that filesystem",
    errno.EDQUOT: "the disk quota is used up: free space or raise the quota",
    errno.EROFS: "the filesystem is read-only: mount it read-write or choose another "
    "--workspace-root",
    errno.EACCES: "permission denied: the workspace must be writable by this user",
}


@contextlib.contextmanager
def disk_errors(action: str) -> Iterator[None]:
    """Turn an OSError into a GatewayError that says what failed, where, and what to do."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) not in action else ""
        raise GatewayError(
            f"cannot {action}{where}: {exc.strerror or exc}",
            hint=_DISK_HINTS.get(exc.errno or 0),
        ) from exc


def gateway_token(config: AgentConfig, envelope: BootstrapEnvelope | None) -> tuple[str, bool]:
    """The token and whether it was generated here (then it is written for local clients)."""
    if envelope is not None and envelope.gateway_token:
        return envelope.gateway_token, False
    if config.gateway.auth_token:
        return config.gateway.auth_token, False
    return secrets.token_urlsafe(32), True


def run_vm(args: argparse.Namespace) -> int:
    """Entry of the `vm` mode."""
    from oxydra.config.loader import ConfigSources, load_agent_config
    from oxydra.config.workspace import resolve_workspace
    from oxydra.security import protect_agent_process

    protect_agent_process()
    envelope = read_bootstrap(args)
    user = envelope.user_id if envelope else args.user_id
    root = envelope.workspace_root if envelope else args.workspace_root
    workspace = resolve_workspace(user, root)
    config = load_agent_config(ConfigSources(overrides=args.overrides)).config
    bind = args.gateway_bind or config.gateway.bind
    from oxydra.app.channels import user_config

    channels = user_config(envelope, getattr(args, "user_config", None))
    asyncio.run(
        serve_vm(
            config, user=user, workspace=workspace, bind=bind, envelope=envelope,
            user_config=channels,
        )
    )  # fmt: skip
    return 0


async def serve_vm(
    config: AgentConfig,
    *,
    user: str,
    workspace: Path,
    bind: str,
    envelope: BootstrapEnvelope | None = None,
    stop: asyncio.Event | None = None,
    environ: dict[str, str] | None = None,
    user_config: UserConfig | None = None,
) -> None:
    """Run the guest until `stop` is set (or a termination signal arrives).

    `user_config` carries `[channels]` and `[[people]]` of the user's runner file.
    """
    from oxydra.runtime import provision_workspace

    with disk_errors(f"prepare the workspace {workspace}"):
        workspace = provision_workspace(workspace)
    env = environ if environ is not None else dict(os.environ)
    observability = _observability(config, workspace, env)
    try:
        await _serve(config, user, workspace, bind, envelope, stop, env, observability, user_config)
    finally:
        await observability.aclose()


async def _serve(
    config: AgentConfig,
    user: str,
    workspace: Path,
    bind: str,
    envelope: BootstrapEnvelope | None,
    stop: asyncio.Event | None,
    env: dict[str, str],
    observability: Any,
    user_config: UserConfig | None = None,
) -> None:
    from oxydra.app.channels import open_channels
    from oxydra.app.services import host_id, open_services
    from oxydra.gateway import (
        FrameRelay,
        GatewayCore,
        GatewayServer,
        MemorySessionRecords,
        TurnLeases,
    )

    with span("vm.start", remote_parent=envelope.traceparent if envelope else None, user=user):
        services = await open_services(
            config,
            user_id=user,
            workspace=workspace,
            environ=env,
            envelope=envelope,
            mcp_background=True,
            background_jobs=True,
        )
    token, generated = gateway_token(config, envelope)
    shared = services.memory.dialect == "postgres"  # hosts share sessions (docs/postgres.md)
    poll_leases = TurnLeases(services.memory, host_id()) if shared else None
    try:
        channels = open_channels(
            user_config, user_id=user, memory=services.memory, workspace=workspace, environ=env,
            gateway_token=token, agents=sorted(config.agents),
            lease=(lambda key: poll_leases.hold(key, "poller")) if poll_leases else None,
        )  # fmt: skip
    except BaseException:
        await services.aclose()
        raise
    services.background.append(channels)
    runtime = services.agent.runtime
    leases = relay = None
    if shared:
        leases = TurnLeases(services.memory, host_id(), getattr(runtime, "forget", None))
        relay = FrameRelay(services.memory)
    core = GatewayCore(
        runtime,
        MemorySessionRecords(services.memory),
        config.gateway,
        approval_timeout_secs=config.tools.approval.timeout_secs,
        leases=leases,
        relay=relay,
        data=services.memory,
    )
    # Kept for the next hello whether or not the scheduler runs: background agents notify
    # too, and a report that finds no client must not be lost.
    core.attach_outbox(services.schedules or _outbox(services.memory))
    status = _startup_status(envelope)
    host, _, port = bind.rpartition(":")
    front = _web_front(config, {token: user}, host, _PageReads(services, workspace))
    server = GatewayServer(
        core,
        {token: user},
        allowed_origins=config.gateway.allowed_origins,
        startup_status=status,
        front=front,
        channel_health=channels.health if channels.registry.names else None,
    )
    bound_host, bound_port = await server.start(host.strip("[]"), int(port))
    if front is not None:
        front.bind(bound_host, bound_port, config.gateway.allowed_origins)
    endpoint = f"ws://{bound_host}:{bound_port}/ws"
    ipc = workspace / "ipc"
    try:
        with disk_errors(f"create {ipc}"):
            ipc.mkdir(exist_ok=True, mode=0o700)
        if generated:
            write_atomic(ipc / "gateway-token", token + "\n")
        write_atomic(ipc / "gateway-endpoint", endpoint + "\n", mode=0o644)
    except GatewayError:
        await server.close()
        await services.aclose()
        raise
    await _serve_metrics(observability, core, ipc)
    services.start_background(core)
    if config.sessions.retain_days is not None:
        pruned = await core.book.prune(config.sessions.retain_days)
        if pruned:
            _log.info("retention: deleted %d archived sessions", len(pruned))
    if services.jobs is not None:
        services.jobs.report = _reporter(core, services.agent.runtime)
        core.cancel_hooks.append(services.jobs.cancel_user)
        resumed = await services.jobs.resume()
        if resumed:
            _log.info("resumed %d background agents", resumed)
    print(f"gateway_endpoint={endpoint}", flush=True)
    stop = stop or asyncio.Event()
    if threading.current_thread() is threading.main_thread():  # embedded runs own none
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(FileNotFoundError):
            (ipc / "gateway-endpoint").unlink()
        await core.shutdown()
        await server.close()
        await services.aclose()


class _PageReads:
    """The chat page's reads: a turn's trace (observability store), scheduled jobs."""

    def __init__(self, services: Any, workspace: Path) -> None:
        self.services, self.workspace = services, workspace

    async def trace(self, turn_id: str) -> list[dict[str, Any]] | None:
        import msgspec

        from oxydra.observability._store import db_path, load_trace, open_db

        def read() -> list[dict[str, Any]] | None:
            path = db_path(self.workspace)
            if not path.exists():
                return None
            db = open_db(path, readonly=True)
            try:
                spans = load_trace(db, turn_id)
            finally:
                db.close()
            return None if spans is None else msgspec.to_builtins(spans)

        return await asyncio.to_thread(read)

    async def schedules(self, user_id: str) -> list[dict[str, Any]]:
        import msgspec

        from oxydra.scheduler import ScheduleFilters

        store = self.services.schedules
        if store is None:
            return []
        found, _ = await store.search(user_id, ScheduleFilters(limit=50))
        out = []
        for schedule in found:
            item = msgspec.to_builtins(schedule)
            item["runs"] = msgspec.to_builtins(await store.runs(user_id, schedule.schedule_id, 5))
            out.append(item)
        return out


def _web_front(config: AgentConfig, tokens: dict[str, str], host: str, reads: Any) -> Any:
    """The chat page beside `/ws`, when enabled and safe to serve on this address."""
    from oxydra.web._http import is_loopback

    if not config.gateway.web:
        return None
    if not is_loopback(host) and not config.gateway.web_insecure_http:
        _log.warning(
            "web page not served: gateway bind is not loopback",
            extra={"bind": host, "hint": "set gateway.web_insecure_http = true behind TLS"},
        )
        return None
    return _LazyFront(tokens, reads)


class _LazyFront:
    """The `WebFront`, built at the first HTTP request or browser upgrade: a server nobody
    opens the page of never loads its modules and files."""

    def __init__(self, tokens: dict[str, str], reads: Any) -> None:
        self.tokens, self.reads = tokens, reads
        self.bound: tuple[str, int, list[str]] | None = None
        self._front: Any = None

    def bind(self, host: str, port: int, origins: list[str]) -> None:
        self.bound = (host, port, list(origins))
        if self._front is not None:
            self._front.bind(host, port, origins)

    @property
    def front(self) -> Any:
        if self._front is None:
            from oxydra.web import WebFront

            self._front = WebFront(self.tokens, (), reads=self.reads)
            if self.bound is not None:
                self._front.bind(*self.bound)
        return self._front

    def respond(self, request: Any, peer: str) -> Any:
        return self.front.respond(request, peer)

    def browser_user(self, request: Any) -> str | None:
        user: str | None = self.front.browser_user(request)
        return user

    def own_origin(self, request: Any) -> bool:
        return bool(self.front.own_origin(request))


def _outbox(memory: Any) -> Any:
    """The kept-notifications table without the scheduler (`[scheduler] enabled = false`)."""
    from oxydra.scheduler import ScheduleStore

    return ScheduleStore(memory)


def _reporter(core: Any, runtime: Any) -> Any:
    """Deliver a background agent's report: into its parent session, and to the person."""
    from oxydra.core.messages import Message
    from oxydra.wire.gateway import ScheduledNotification

    async def report(job: Any, text: str, label: Any) -> None:
        brief = job.brief
        heading = f"[Report of background agent '{brief.agent_name}' (job {job.job_id})"
        content = f"{heading}, for: {brief.goal[:200]}]\n{text}"
        message = Message(role="user", content=content, label=label)
        await runtime.deliver(job.parent_session_id, job.user_id, message)
        notice = ScheduledNotification(
            schedule_id=job.job_id,
            schedule_name=f"agent {brief.agent_name}",
            message=text[:4000],
        )
        await core.notify(job.user_id, notice, session_id=job.parent_session_id)

    return report


def _observability(config: AgentConfig, workspace: Path, env: dict[str, str]) -> Any:
    """Install the span hook: ledger and span store always, OTel export when enabled."""
    from oxydra.observability import start_observability
    from oxydra.tools import default_scrubber

    scrubber = default_scrubber(config, env)
    return start_observability(
        config.observability, workspace=workspace, environ=env, scrub=scrubber.scrub
    )


async def _serve_metrics(observability: Any, core: Any, ipc: Path) -> None:
    """The Prometheus endpoint, with the gateway's gauges; its address goes to `ipc/`."""
    observability.gauge(
        "oxydra_active_sessions", "Sessions with a connected client",
        lambda: core.load()["active_sessions"],
    )  # fmt: skip
    observability.gauge(
        "oxydra_queue_depth", "Work waiting or running, by queue",
        lambda: {"turns": core.load()["running_turns"]}, "queue",
    )  # fmt: skip
    address = await observability.serve_metrics()
    if address is not None:
        host, port = address
        write_atomic(ipc / "metrics-endpoint", f"http://{host}:{port}/metrics\n", mode=0o644)


def _startup_status(envelope: BootstrapEnvelope | None) -> dict[str, Any] | None:
    if envelope is None or envelope.startup_status is None:
        return None
    import msgspec

    status: dict[str, Any] = msgspec.to_builtins(envelope.startup_status)
    return status
