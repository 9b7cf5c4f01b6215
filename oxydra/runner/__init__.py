"""Runner: the host side. Workspaces, the bootstrap envelope, guests at each tier, the daemon.

`oxydra runner` is `cli.run_runner`; other code uses the pieces below. The tier launchers
(`_process`, `_container`, `_firecracker`) are reached through `launch_guest`, so the docker
SDK is imported only when a container guest is started.
"""

import typing as _typing

from oxydra._lazy import lazy_getattr as _lazy_getattr

if _typing.TYPE_CHECKING:
    from oxydra.runner._bootstrap import LaunchSpec, build_envelope, guest_environment
    from oxydra.runner._config import RunnerContext, load_context
    from oxydra.runner._control import ControlServer, control_request
    from oxydra.runner._guest import Guest, LaunchResult
    from oxydra.runner._hardening import HardeningPlan, plan_hardening
    from oxydra.runner._launch import launch_guest
    from oxydra.runner._logs import read_logs
    from oxydra.runner._workspace import UserWorkspace, provision
    from oxydra.security._landlock import landlock_abi

__all__ = [
    "ControlServer",
    "Guest",
    "HardeningPlan",
    "LaunchResult",
    "LaunchSpec",
    "RunnerContext",
    "UserWorkspace",
    "build_envelope",
    "control_request",
    "guest_environment",
    "landlock_abi",
    "launch_guest",
    "load_context",
    "plan_hardening",
    "provision",
    "read_logs",
]

__getattr__ = _lazy_getattr(
    globals(),
    {
        "ControlServer": "oxydra.runner._control",
        "Guest": "oxydra.runner._guest",
        "HardeningPlan": "oxydra.runner._hardening",
        "LaunchResult": "oxydra.runner._guest",
        "LaunchSpec": "oxydra.runner._bootstrap",
        "RunnerContext": "oxydra.runner._config",
        "UserWorkspace": "oxydra.runner._workspace",
        "build_envelope": "oxydra.runner._bootstrap",
        "control_request": "oxydra.runner._control",
        "guest_environment": "oxydra.runner._bootstrap",
        "landlock_abi": "oxydra.security._landlock",
        "launch_guest": "oxydra.runner._launch",
        "load_context": "oxydra.runner._config",
        "plan_hardening": "oxydra.runner._hardening",
        "provision": "oxydra.runner._workspace",
        "read_logs": "oxydra.runner._logs",
    },
)
