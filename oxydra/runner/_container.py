"""The container tier: the guest and its shell sidecar as Docker containers (docker SDK).

Both containers: not privileged, read-only root filesystem, every capability dropped,
`no-new-privileges`, an init process, the host uid:gid, CPU/memory/pids limits from
`[resources]` (a pids limit always: a fork bomb stops at 512 by default), and bind mounts
of the user's workspace directories only.

The user is never uid 0: the host's uid, or 10001 when the runner runs as root (then the
directories the guest writes are given to that uid).

- `oxydra-vm` runs `oxydra vm --bootstrap-file /run/oxydra/bootstrap`. It sees, at their
  host paths, `shared`, `tmp`, `vault` (read-only) and the workspace's `.oxydra`; at
  `<ws>/ipc` it sees `ipc/guest/` only — never the runner's control socket or lock — and at
  `<ws>/logs` only `logs/guest/` (its taint audit), not the runner's logs of its output.
  The agent config files of the host (`~/.config/oxydra`, `~/.oxydra`, `./.oxydra`) are
  bound read-only where the guest's loader looks (HOME `/tmp/oxydra-home`, working
  directory `/run/oxydra/project`), so the guest runs the config the runner checked and
  cannot change it. Host networking, as upstream: its gateway is reachable from the host,
  and providers from it. The gateway marker it writes (`ipc/guest/gateway-endpoint`) is
  checked by the runner and copied to `ipc/gateway-endpoint`.
- `shell-vm` runs `oxydra shell-daemon --socket /ipc/shell-daemon.sock`; it sees `shared`
  at /shared, `tmp` at /tmp, only `ipc/guest/shell/` at /ipc (not the gateway token, the
  bootstrap file or the control socket, unlike upstream) and the user's skills read-only at
  /skills (so a skill's scripts run, and no command changes them); it has no network at all.
- The image must carry this runner's build id (label `oxydra.build_id`, written by
  `runner image build`); another build's image is refused with the command to rebuild.

Logs (the seed's gap): each container's stdout and stderr are streamed from the Docker API
(follow, with timestamps) into `<ws>/logs/<role>.<stream>.log` by one thread per stream.

Docker SDK and `requests` exceptions are translated to `RunnerError` here, nowhere else.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from oxydra.config.schema import AgentConfig
from oxydra.core.errors import RunnerError
from oxydra.core.tiers import SandboxTier
from oxydra.core.unixpath import unix_socket_path
from oxydra.runner._bootstrap import (
    LaunchSpec,
    build_envelope,
    credential_names,
    startup_status,
    write_bootstrap_file,
)
from oxydra.runner._guest import LaunchResult, open_log
from oxydra.runner._hardening import config_files
from oxydra.runner._rootfs import guest_ids
from oxydra.tools.skills import SIDECAR_SKILLS
from oxydra.wire.envelope import SidecarEndpoint

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
GUEST_HOME = "/tmp/oxydra-home"
GUEST_PROJECT = "/run/oxydra/project"
DEFAULT_PIDS_LIMIT = 512
GUEST_BOOTSTRAP = "/run/oxydra/bootstrap"
SHELL_SOCKET_IN_SIDECAR = "/ipc/shell-daemon.sock"
SIDECAR_COMMAND = (
    "oxydra", "shell-daemon", "--socket", SHELL_SOCKET_IN_SIDECAR,
    "--writable", "/shared", "--writable", "/tmp",
    "--allow-unconfined",  # Landlock where the engine allows it; the mounts confine regardless
)  # fmt: skip
_T = TypeVar("_T")


def docker_url(environ: Mapping[str, str]) -> str:
    """`$DOCKER_HOST`, else the local engine's socket."""
    return str(environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST)


def container_name(user_id: str, role: str) -> str:
    """`oxydra-container-<user>-<role>`, as upstream (user sanitised for Docker)."""
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "-", user_id)
    return f"oxydra-container-{safe}-{role}"


def route_env(extra: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split `-e` entries: `SHELL_X` → sidecar as `X`; `TZ` → both; the rest → runtime."""
    runtime, sidecar = {}, {}
    for key, value in extra.items():
        if key.startswith("SHELL_") and len(key) > 6:
            sidecar[key[6:]] = value
        else:
            runtime[key] = value
            if key == "TZ":
                sidecar[key] = value
    return runtime, sidecar


def _limits(spec: LaunchSpec) -> dict[str, Any]:
    res = spec.ctx.user.resources
    limits: dict[str, Any] = {"pids_limit": res.max_processes or DEFAULT_PIDS_LIMIT}
    if res.max_vcpus:
        limits["nano_cpus"] = res.max_vcpus * 1_000_000_000
    if res.max_memory_mib:
        limits["mem_limit"] = res.max_memory_mib * 1024 * 1024
    return limits


def _common(spec: LaunchSpec, role: str) -> dict[str, Any]:
    uid, gid = guest_ids(spec.environ)
    return {
        "name": container_name(spec.ctx.user_id, role),
        "labels": {
            "oxydra.sandbox_tier": str(SandboxTier.CONTAINER),
            "oxydra.user_id": spec.ctx.user_id,
            "oxydra.guest_role": role,
        },
        "user": f"{uid}:{gid}",
        "privileged": False,
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "init": True,
        "restart_policy": {"Name": "no"},
        **_limits(spec),
    }


def runtime_container(spec: LaunchSpec, credentials: list[str]) -> dict[str, Any]:
    """`containers.create` arguments of the `oxydra-vm` container."""
    ws = spec.workspace
    root = str(ws.root)
    runtime_env, _ = route_env(spec.ctx.extra_env)
    env = {k: v for k, v in spec.environ.items() if k.startswith("OXYDRA_")}
    env.pop("OXYDRA_GATEWAY_TOKEN", None)
    env.update((k, spec.environ[k]) for k in credentials)
    env.update(runtime_env)
    env.setdefault("TZ", spec.ctx.user.behavior.timezone)
    env.update(
        OXYDRA_BOOTSTRAP_FILE=GUEST_BOOTSTRAP,
        HOME=GUEST_HOME,
        TIKTOKEN_CACHE_DIR=str(ws.internal / "cache" / "tiktoken"),
    )
    volumes = {
        str(ws.shared): {"bind": str(ws.shared), "mode": "rw"},
        str(ws.tmp): {"bind": str(ws.tmp), "mode": "rw"},
        str(ws.vault): {"bind": str(ws.vault), "mode": "ro"},
        str(ws.internal): {"bind": str(ws.internal), "mode": "rw"},
        str(guest_ipc(spec)): {"bind": str(ws.ipc), "mode": "rw"},
        str(guest_logs(spec)): {"bind": str(ws.logs), "mode": "rw"},
        str(ws.ipc / "bootstrap" / "runner_bootstrap.json"): {
            "bind": GUEST_BOOTSTRAP,
            "mode": "ro",
        },
    }
    volumes.update(config_binds(spec))
    command = ["oxydra", "vm", "--user-id", spec.ctx.user_id, "--workspace-root", root]
    command += ["--bootstrap-file", GUEST_BOOTSTRAP]
    for item in spec.ctx.overrides:
        command += ["--set", item]
    return {
        "image": spec.ctx.config.guest_images.oxydra_vm,
        "command": command,
        "working_dir": GUEST_PROJECT,
        "environment": env,
        "volumes": volumes,
        "network_mode": "host",
        "tmpfs": {"/tmp": "rw,nosuid,nodev,noexec,size=64m"},
        **_common(spec, "oxydra-vm"),
    }


def config_binds(spec: LaunchSpec) -> dict[str, dict[str, str]]:
    """The host's agent config files, read-only where the guest's config loader looks."""
    from oxydra.config.loader import FILE_NAMES
    from oxydra.config.persona import PERSONA_FILES

    wanted = {*FILE_NAMES, *PERSONA_FILES}  # not runner.toml: it may hold the web token
    binds: dict[str, dict[str, str]] = {}
    for text in config_files(spec.home, spec.cwd):
        path = Path(text)
        if path.name not in wanted:
            continue
        if spec.cwd / ".oxydra" in path.parents:
            inside = f"{GUEST_PROJECT}/{path.relative_to(spec.cwd)}"
        else:
            inside = f"{GUEST_HOME}/{path.relative_to(spec.home)}"
        binds[str(path.resolve())] = {"bind": inside, "mode": "ro"}
    return binds


def guest_ipc(spec: LaunchSpec) -> Path:
    """`<ws>/ipc/guest/`: the only part of ipc the runtime container sees (as `<ws>/ipc`)."""
    path = spec.workspace.ipc / "guest"
    path.mkdir(mode=0o700, exist_ok=True)
    give_to_guest(path, spec.environ)
    return path


def guest_logs(spec: LaunchSpec) -> Path:
    """`<ws>/logs/guest/`: the guest's own logs (the taint audit), seen as `<ws>/logs`; the
    runner's logs of the guest's output stay out of its reach."""
    path = spec.workspace.logs / "guest"
    path.mkdir(mode=0o700, exist_ok=True)
    give_to_guest(path, spec.environ)
    return path


def give_to_guest(path: Path, environ: Mapping[str, str]) -> None:
    """When we run as root, hand `path` to the guest's uid (the guest is never uid 0)."""
    if os.geteuid() == 0:
        uid, gid = guest_ids(environ)
        os.chown(path, uid, gid)


def sidecar_container(spec: LaunchSpec) -> dict[str, Any]:
    """`containers.create` arguments of the `shell-vm` container."""
    ws = spec.workspace
    _, sidecar_env = route_env(spec.ctx.extra_env)
    env = {"TZ": spec.ctx.user.behavior.timezone, "HOME": "/shared", **sidecar_env}
    return {
        "image": spec.ctx.config.guest_images.shell_vm,
        "command": [*SIDECAR_COMMAND],
        "working_dir": "/shared",
        "environment": env,
        "volumes": {
            str(ws.shared): {"bind": "/shared", "mode": "rw"},
            str(ws.tmp): {"bind": "/tmp", "mode": "rw"},
            str(shell_ipc(spec)): {"bind": "/ipc", "mode": "rw"},
            str(managed_skills(spec)): {"bind": SIDECAR_SKILLS, "mode": "ro"},
        },
        "network_mode": "none",
        **_common(spec, "shell-vm"),
    }


def managed_skills(spec: LaunchSpec) -> Path:
    """`<ws>/skills/`: the user's skills, which the shell may run but never change."""
    path = spec.workspace.root / "skills"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def shell_ipc(spec: LaunchSpec) -> Path:
    """`<ws>/ipc/guest/shell/`: the only part of ipc the shell sidecar sees."""
    path = guest_ipc(spec) / "shell"
    path.mkdir(mode=0o700, exist_ok=True)
    give_to_guest(path, spec.environ)
    return path


def _call(what: str, func: Callable[[], _T]) -> _T:
    """Run one Docker call; its exceptions become RunnerError."""
    import docker.errors
    import requests.exceptions

    try:
        return func()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise RunnerError(f"docker: {what}: {exc}") from exc


class ContainerGuest:
    """A running container and the threads copying its logs to files."""

    pid: int | None = None

    def __init__(self, container: Any, role: str, pumps: list[threading.Thread]) -> None:
        self.container = container
        self.role = role
        self.container_name: str | None = container.name
        self.pumps = pumps

    def exit_code(self) -> int | None:
        """See `Guest.exit_code` (asks the engine)."""
        try:
            _call("inspect", self.container.reload)
        except RunnerError:
            return -1
        state = self.container.attrs.get("State", {})
        return None if state.get("Running") else int(state.get("ExitCode", 0))

    def wait(self, timeout: float | None = None) -> int | None:
        """See `Guest.wait`."""
        try:
            result = _call("wait", lambda: self.container.wait(timeout=timeout))
        except RunnerError:
            return self.exit_code()
        return int(result.get("StatusCode", 0))

    def stop(self, grace: float = 10.0) -> None:
        """Stop and remove the container; the log threads end with its streams."""
        with contextlib.suppress(RunnerError):
            _call("stop", lambda: self.container.stop(timeout=int(grace)))
        with contextlib.suppress(RunnerError):
            _call("remove", lambda: self.container.remove(force=True))
        for pump in self.pumps:
            pump.join(timeout=5)


def _pump(stream: Iterator[bytes], path: Path) -> None:
    fd = open_log(path)
    try:
        for chunk in stream:
            os.write(fd, chunk)
    except Exception:  # the engine went away or the container was removed: the log ends
        pass
    finally:
        os.close(fd)


def _start(client: Any, spec: LaunchSpec, kwargs: dict[str, Any]) -> ContainerGuest:
    import docker.errors

    image, name = kwargs.pop("image"), kwargs["name"]
    role = kwargs["labels"]["oxydra.guest_role"]
    _ensure_image(client, image)

    def remove_old() -> None:
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(name).remove(force=True)

    _call(f"remove old {name}", remove_old)
    container = _call(f"create {name}", lambda: client.containers.create(image, **kwargs))
    _call(f"start {name}", container.start)
    pumps = []
    for stream in ("stdout", "stderr"):
        logs = _call(
            f"logs {name}",
            lambda s=stream: container.logs(  # type: ignore[misc]
                stream=True,
                follow=True,
                stdout=s == "stdout",
                stderr=s == "stderr",
                timestamps=True,
            ),
        )
        path = spec.workspace.log_file(role, stream)
        pump = threading.Thread(target=_pump, args=(logs, path), name=f"logs-{role}-{stream}")
        pump.daemon = True
        pump.start()
        pumps.append(pump)
    return ContainerGuest(container, role, pumps)


def _ensure_image(client: Any, image: str) -> None:
    import docker.errors
    from docker.utils import parse_repository_tag

    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.DockerException as exc:
        raise RunnerError(f"docker: inspect image {image}: {exc}") from exc
    from oxydra.runner._image import rebuild_hint

    repo, tag = parse_repository_tag(image)
    try:
        client.images.pull(repo, tag=tag or "latest")
    except Exception as exc:  # the SDK's and requests' errors alike: say how to build it here
        raise RunnerError(
            f"docker: image {image} is not present and pulling it failed: {exc}",
            hint=rebuild_hint(),
        ) from exc


def connect(spec: LaunchSpec) -> Any:
    """A Docker client for `$DOCKER_HOST` (or the local socket), checked with a ping."""
    import docker

    url = docker_url(spec.environ)
    if url.startswith("unix://"):
        _probe_unix(url.removeprefix("unix://"))
    client = _call(f"connect to {url}", lambda: docker.DockerClient(base_url=url, timeout=60))
    _call(f"ping {url}", client.ping)
    return client


def _probe_unix(path: str) -> None:
    """Fail clearly (and without the SDK leaking a socket) when no engine listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with unix_socket_path(path) as reachable:
            sock.connect(reachable)
    except OSError as exc:
        raise RunnerError(
            f"docker: no Docker engine answers on {path}: {exc.strerror}",
            hint="start Docker, set DOCKER_HOST, or use another tier (--insecure for process)",
        ) from exc
    finally:
        sock.close()


def launch_container(spec: LaunchSpec, config: AgentConfig) -> LaunchResult:
    """Start shell-vm (if the shell is wanted) then oxydra-vm; hand over the envelope file.

    Raises:
        RunnerError: no engine, the runtime image is missing or of another build, or the
            runtime container failed.
    """
    client = connect(spec)
    try:
        warning = check_image(client, spec.ctx.config.guest_images.oxydra_vm)
        ws = spec.workspace
        for path in (ws.shared, ws.tmp, ws.vault, ws.internal):
            give_to_guest(path, spec.environ)
        with contextlib.suppress(FileNotFoundError):  # a dead guest's, not this one's
            (guest_ipc(spec) / "gateway-endpoint").unlink()
        launch = _launch_pair(client, spec, config)
    except BaseException:
        client.close()
        raise
    if warning:
        launch.warnings.append(warning)
    launch.guest_marker = guest_ipc(spec) / "gateway-endpoint"
    return launch


def check_image(client: Any, image: str) -> str | None:
    """Refuse a runtime image built from another archive (a warning from a source tree)."""
    import docker.errors

    from oxydra.runner._buildid import own_build_id
    from oxydra.runner._image import check_build_id, image_build_id, rebuild_hint

    _ensure_image(client, image)
    try:
        attrs = client.images.get(image).attrs
    except docker.errors.DockerException as exc:
        raise RunnerError(f"docker: inspect image {image}: {exc}", hint=rebuild_hint()) from exc
    return check_build_id(image_build_id(attrs), own_build_id(), f"the guest image {image}")


def _launch_pair(client: Any, spec: LaunchSpec, config: AgentConfig) -> LaunchResult:
    credentials = credential_names(config, spec.guest_environ)
    sidecar, degraded = None, []
    if spec.ctx.user.behavior.shell_enabled is not False and config.tools.shell.enabled:
        try:
            sidecar = _start(client, spec, sidecar_container(spec))
        except RunnerError as exc:
            degraded.append(("sidecar_unavailable", str(exc)))
    endpoint = None
    if sidecar is not None:
        address = str(spec.workspace.ipc / "shell" / "shell-daemon.sock")
        endpoint = SidecarEndpoint(transport="unix", address=address)
    status = startup_status(
        SandboxTier.CONTAINER,
        shell=sidecar is not None,
        sidecar=sidecar is not None,
        degraded=degraded,
    )
    envelope = build_envelope(spec, status, credentials, endpoint)
    give_to_guest(write_bootstrap_file(spec.workspace, envelope), spec.environ)
    try:
        guest = _start(client, spec, runtime_container(spec, credentials))
    except RunnerError:
        if sidecar is not None:
            sidecar.stop(grace=2)
        raise
    return LaunchResult(guest=guest, envelope=envelope, sidecar=sidecar, closers=[client.close])
