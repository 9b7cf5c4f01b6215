"""`oxydra runner`: the Rust runner's command line, `key=value` output and all.

    runner [--daemon]      start the user's guest in the foreground (with the control socket)
    runner start           start it in the background: a detached daemon serves the control
                           socket; returns once the gateway is up
    runner stop | status | restart
    runner logs [--role R] [--stream S] [--tail [N]] [--since T] [--format F] [-f]
    runner --tui [--probe] attach the terminal UI to the running guest (probe: report only)
    runner web [--bind H:P] [--insecure-http]  the configurator in a browser (oxydra.web)

Global flags (-c, -u, --insecure, -e, --env-file, --set) are accepted before or after the
subcommand. Any error prints `runner error: <message>` and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from oxydra.core.errors import GatewayError, OxydraError, RunnerError, RunnerNotRunningError
from oxydra.runner._config import RunnerContext, find_config, load_context
from oxydra.runner._control import NOT_STARTED_HINT, control_request, daemon_alive
from oxydra.runner._guest import LaunchResult
from oxydra.runner._logs import DEFAULT_TAIL, format_entry, parse_since, read_logs
from oxydra.runner._selfcmd import self_command, self_environment, shown_command
from oxydra.runner._workspace import UserWorkspace, clear_stale
from oxydra.wire.control import (
    MAX_LOG_TAIL,
    ControlError,
    ControlHealth,
    ControlResponse,
    HealthCheckRequest,
    LogsRequest,
    LogsResponse,
    ShutdownStatus,
    ShutdownUser,
)

if TYPE_CHECKING:
    from oxydra.tui.client import GatewayClient

_T = TypeVar("_T")
TIER_NAMES = {"process": "Process", "container": "Container", "micro_vm": "MicroVm"}
STOP_WAIT_SECS = 10.0
FOLLOW_POLL_SECS = 2.0


def emit(key: str, value: object) -> None:
    """One `key=value` line on stdout (booleans lower-case, None skipped)."""
    if value is None:
        return
    text = str(value).lower() if isinstance(value, bool) else str(value)
    print(f"{key}={text}", flush=True)


def run_runner(args: argparse.Namespace) -> int:
    """Entry of the `runner` mode."""
    try:
        return _dispatch(args)
    except RunnerError as exc:
        if exc.hint == NOT_STARTED_HINT:  # say exactly how, for this setup
            exc.hint = start_hint(args)
        print(f"runner error: {exc}", file=sys.stderr, flush=True)
        return 1
    except (OxydraError, OSError) as exc:
        print(f"runner error: {exc}", file=sys.stderr, flush=True)
        return 1


def start_hint(args: argparse.Namespace) -> str:
    """The start command that works here: with `--insecure` when no runner.toml is found,
    since without one `start` refuses to pick a sandbox (docs/runner.md)."""
    cwd, home = Path.cwd(), Path.home()
    configured = args.config or find_config(None, cwd, home) is not None
    flags = [] if configured else ["--insecure"]
    user = ["-u", args.user] if args.user else []
    command = shown_command("runner", *user, *flags, "start")
    why = "" if configured else " (no runner.toml: the guest runs as a local process)"
    return f"start it with `{command}`{why}"


def _dispatch(args: argparse.Namespace) -> int:
    command = args.command
    if args.tui:
        if command:
            raise RunnerError("--tui takes no subcommand")
        return attach_tui(_context(args), probe=args.probe)
    match command:
        case None:
            return serve_foreground(
                _context(args), control=args.daemon, detach=args.detach_when_ready
            )
        case "start":
            return start_background(args, _context(args))
        case "stop":
            return stop(_context(args))
        case "status":
            return status(_context(args))
        case "restart":
            ctx = _context(args)
            ctx.require_launchable()  # before the stop: a restart that cannot start stops nothing
            stop(ctx, missing_ok=True)
            return start_background(args, ctx)
        case "logs":
            return logs(_context(args), args)
        case "image":
            from oxydra.runner._image_cli import image_command

            return image_command(args)
        case _:
            raise RunnerError(
                f"unknown subcommand {command!r} (start, stop, status, restart, logs, image)"
            )


def _user_flags(args: argparse.Namespace) -> list[str]:
    """The flags that chose this user and tier, to repeat in a suggested command."""
    return [*(["-u", args.user] if args.user else []), *(["--insecure"] if args.insecure else [])]


def _context(args: argparse.Namespace) -> RunnerContext:
    return load_context(
        config=args.config,
        user=args.user,
        insecure=args.insecure,
        env=args.env,
        env_file=args.env_file,
        overrides=args.overrides,
    )


# ---- start -------------------------------------------------------------------------------


@contextlib.contextmanager
def daemon_lock(workspace: UserWorkspace) -> Iterator[None]:
    """Hold `<ws>/ipc/runner.lock` for the daemon's lifetime: one guest per user."""
    fd = os.open(workspace.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RunnerError(
                f"a runner is already running for this user (lock {workspace.lock_file})",
                hint=f"`{shown_command('runner', 'status')}` shows it; "
                f"`{shown_command('runner', 'stop')}` stops it",
            ) from exc
        yield
    finally:
        os.close(fd)


def serve_foreground(ctx: RunnerContext, *, control: bool, detach: bool = False) -> int:
    """Start the guest and stay with it (serving the control socket when `control`)."""
    from oxydra.runner._bootstrap import LaunchSpec, generate_token, write_token
    from oxydra.runner._daemon import Supervisor
    from oxydra.runner._launch import launch_guest

    ctx.require_launchable()
    workspace = ctx.provision()
    from oxydra.security import protect_agent_process

    protect_agent_process()  # it holds the provider keys in its environment
    with daemon_lock(workspace):
        clear_stale(workspace)
        spec = LaunchSpec(
            ctx=ctx,
            workspace=workspace,
            token=generate_token(),
            environ=dict(os.environ),
            cwd=Path.cwd(),
            home=Path.home(),
        )
        write_token(workspace, spec.token)
        launch = launch_guest(spec)
        print_launch(ctx, workspace, launch)
        supervisor = Supervisor(ctx.user_id, workspace, launch, emit)
        on_ready = (lambda: detach_stdio(workspace.logs / "runner.log")) if detach else None
        try:
            return asyncio.run(supervisor.run(control=control, on_ready=on_ready))
        except BaseException:
            launch.stop(grace=2)
            raise


def print_launch(ctx: RunnerContext, workspace: UserWorkspace, launch: LaunchResult) -> None:
    """The `key=value` lines of a start, as the Rust runner prints them (plus `hardening`)."""
    status = launch.status
    emit("mode", "start")
    emit("user_id", ctx.user_id)
    emit("sandbox_tier", TIER_NAMES[str(status.sandbox_tier)])
    emit("workspace_root", workspace.root)
    emit("shell_available", status.shell_available)
    emit("browser_available", status.browser_available)
    emit("sidecar_available", status.sidecar_available)
    emit("hardening", ",".join(status.hardening) or "none")
    for reason in status.degraded_reasons:
        emit("degraded_reason", f"{reason.code}:{reason.detail}")
    for warning in launch.warnings:
        emit("warning", warning)
    emit("runtime_pid", launch.guest.pid)
    emit("runtime_container_name", launch.guest.container_name)
    emit("log_dir", workspace.logs)


def detach_stdio(log_path: Path) -> None:
    """Point stdout and stderr at the runner log: the `start` parent sees EOF and returns."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def start_background(args: argparse.Namespace, ctx: RunnerContext) -> int:
    """Run `runner --daemon` detached, relay its start-up lines, return once it is up."""
    ctx.require_launchable()
    workspace = ctx.provision()
    if daemon_alive(workspace.control_socket):
        raise RunnerError(
            f"user '{ctx.user_id}' is already running (control socket {workspace.control_socket})",
            hint=f"use `{shown_command('runner', *_user_flags(args), 'restart')}` to restart it",
        )
    argv = [
        *self_command("runner"),
        *_forwarded_flags(args, ctx),
        "--daemon",
        "--detach-when-ready",
    ]
    child = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=self_environment(os.environ),
        text=True,
    )
    assert child.stdout is not None
    last = ""
    for line in child.stdout:
        last = line.rstrip("\n")
        print(last, file=sys.stdout if _is_key_value(last) else sys.stderr, flush=True)
    child.stdout.close()
    if last == "status=running":
        return 0
    return child.wait() or 1


def _is_key_value(line: str) -> bool:
    key, sep, _ = line.partition("=")
    return bool(sep) and key.replace("_", "").isalnum()


def _forwarded_flags(args: argparse.Namespace, ctx: RunnerContext) -> list[str]:
    flags = ["-u", ctx.user_id]
    if ctx.config_path is not None:
        flags += ["-c", str(ctx.config_path)]
    if ctx.insecure:
        flags.append("--insecure")
    if args.env_file:
        flags += ["--env-file", str(Path(args.env_file).resolve())]
    for entry in args.env:
        flags += ["-e", entry]
    for item in ctx.overrides:
        flags += ["--set", item]
    return flags


# ---- stop, status, logs ---------------------------------------------------------------------


def locate(ctx: RunnerContext) -> UserWorkspace:
    """The workspace paths without creating anything (for commands that only look)."""
    root = ctx.user_root.resolve()
    return UserWorkspace(root=root, shared=root / "shared", tmp=root / "tmp", vault=root / "vault")


def stop(ctx: RunnerContext, *, missing_ok: bool = False) -> int:
    """Send `shutdown_user`; wait until the daemon has let go of the user's lock."""
    workspace = locate(ctx)
    try:
        answer = control_request(workspace.control_socket, ShutdownUser(user_id=ctx.user_id))
    except RunnerNotRunningError:
        if missing_ok:
            return 0
        raise
    shutdown = _expect(answer, ShutdownStatus)
    _wait_unlocked(workspace)
    if missing_ok:
        return 0
    emit("user_id", shutdown.user_id)
    emit("shutdown", shutdown.shutdown)
    if shutdown.already_stopped:
        emit("already_stopped", True)
    emit("message", shutdown.message)
    return 0


def _wait_unlocked(workspace: UserWorkspace) -> None:
    deadline = time.monotonic() + STOP_WAIT_SECS
    with contextlib.suppress(FileNotFoundError):
        fd = os.open(workspace.lock_file, os.O_RDWR)
        try:
            while time.monotonic() < deadline:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    time.sleep(0.05)
        finally:
            os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        workspace.control_socket.unlink()


def status(ctx: RunnerContext) -> int:
    """Send `health_check` and print the answer."""
    workspace = locate(ctx)
    health = _expect(control_request(workspace.control_socket, HealthCheckRequest()), ControlHealth)
    emit("user_id", health.user_id)
    emit("healthy", health.healthy)
    emit("sandbox_tier", TIER_NAMES.get(health.sandbox_tier, health.sandbox_tier))
    emit("shell_available", health.shell_available)
    emit("browser_available", health.browser_available)
    emit("sidecar_available", health.sidecar_available)
    emit("shutdown", health.shutdown)
    emit("message", health.message)
    emit("log_dir", health.log_dir)
    emit("runtime_pid", health.runtime_pid)
    emit("runtime_container_name", health.runtime_container_name)
    emit("hardening", ",".join(health.hardening) or "none")
    for reason in health.degraded_reasons:
        emit("degraded_reason", reason)
    return 0


def logs(ctx: RunnerContext, args: argparse.Namespace) -> int:
    """Print the guest's log lines (from the daemon, or the files when it is not running)."""
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        raise RunnerError(str(exc)) from exc
    request = LogsRequest(
        role=args.role,
        stream=args.stream,
        tail=min(args.tail or DEFAULT_TAIL, MAX_LOG_TAIL),
        since=since,
        format=args.format,
    )
    workspace = locate(ctx)
    answer, live = _fetch_logs(ctx, workspace, request)
    seen = _print_logs(answer, request.format, set())
    if not args.follow:
        return 0
    return _follow(ctx, workspace, request, seen, live)


def _fetch_logs(
    ctx: RunnerContext, workspace: UserWorkspace, request: LogsRequest
) -> tuple[LogsResponse, bool]:
    try:
        return _expect(control_request(workspace.control_socket, request), LogsResponse), True
    except RunnerNotRunningError:
        pass
    docker = str(ctx.tier) == "container"
    return read_logs(workspace, request, docker=docker), False


def _print_logs(answer: LogsResponse, fmt: str, seen: set[int]) -> set[int]:
    for entry in answer.entries:
        key = hash((entry.timestamp, entry.role, entry.stream, entry.message))
        if key not in seen:
            seen.add(key)
            print(format_entry(entry, fmt), flush=True)
    if answer.truncated:
        print("(older lines were left out)", file=sys.stderr)
    for warning in answer.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return seen if len(seen) <= 10_000 else set()


def _follow(
    ctx: RunnerContext, workspace: UserWorkspace, request: LogsRequest, seen: set[int], live: bool
) -> int:
    import msgspec

    request = msgspec.structs.replace(request, tail=100)
    while True:
        time.sleep(FOLLOW_POLL_SECS)
        try:
            answer, still_live = _fetch_logs(ctx, workspace, request)
        except RunnerError:
            # A stopping daemon ends the connections still queued for an answer; it is gone
            # when its socket no longer accepts one.
            if not live or daemon_alive(workspace.control_socket):
                raise
            still_live = False
        if live and not still_live:
            print("(daemon exited)", file=sys.stderr)
            return 0
        seen = _print_logs(answer, request.format, seen)


def _expect(answer: ControlResponse, kind: type[_T]) -> _T:
    if isinstance(answer, ControlError):
        raise RunnerError(f"runner daemon: {answer.code}: {answer.message}")
    if not isinstance(answer, kind):
        raise RunnerError(
            f"runner daemon answered {type(answer).__name__}, expected {kind.__name__}"
        )
    return answer


# ---- tui -----------------------------------------------------------------------------------


def attach_tui(ctx: RunnerContext, *, probe: bool) -> int:
    """Probe the running guest's gateway, then exec `oxydra tui` at it (or just report)."""
    workspace = locate(ctx)
    marker = workspace.gateway_marker
    if not marker.is_file():
        raise RunnerError(
            f"no running guest for user '{ctx.user_id}' (no gateway marker at {marker})",
            hint=NOT_STARTED_HINT,
        )
    endpoint = marker.read_text().strip()
    token_file = workspace.gateway_token_file
    if not token_file.is_file():
        raise RunnerError(f"no gateway token at {token_file}")
    token = token_file.read_text().strip()
    session_id = asyncio.run(probe_gateway(endpoint, token, ctx.user_id))
    if probe:
        emit("mode", "tui")
        emit("user_id", ctx.user_id)
        emit("gateway_endpoint", endpoint)
        emit("session_id", session_id)
        emit("workspace_root", workspace.root)
        return 0
    argv = self_command("tui")
    argv += [
        "--gateway-endpoint",
        endpoint,
        "--user",
        ctx.user_id,
        "--workspace",
        str(workspace.root),
    ]
    sys.stdout.flush()
    os.execve(argv[0], argv, self_environment(os.environ))
    return 0  # not reached


async def probe_gateway(endpoint: str, token: str, user_id: str, timeout: float = 10.0) -> str:
    """Hello + health_check; returns the session id the gateway bound.

    Raises:
        RunnerError: the gateway is unreachable, refused us, or reports itself unhealthy.
    """
    from oxydra.tui.client import GatewayClient
    from oxydra.wire.gateway import HealthCheck, HealthStatus, HelloAck

    client = GatewayClient(endpoint, token, user_id)
    client.start()
    try:
        async with asyncio.timeout(timeout):
            ack = await _next_frame(client, HelloAck)
            await client.send(HealthCheck(request_id=uuid.uuid4().hex))
            health = await _next_frame(client, HealthStatus)
    except TimeoutError as exc:
        raise RunnerError(f"the gateway at {endpoint} did not answer in {timeout:g}s") from exc
    except GatewayError as exc:
        raise RunnerError(str(exc)) from exc
    finally:
        await client.close()
    if not health.healthy:
        raise RunnerError(f"the gateway reports itself unhealthy: {health.message}")
    return ack.session.session_id


async def _next_frame(client: GatewayClient, kind: type[_T]) -> _T:
    from oxydra.tui.client import ConnectionState

    while True:
        item = await client.events.get()
        if isinstance(item, ConnectionState) and item.state in ("disconnected", "refused"):
            raise RunnerError(f"cannot connect to the gateway: {item.detail}")
        if isinstance(item, kind):
            return item
