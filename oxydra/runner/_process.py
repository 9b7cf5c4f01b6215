"""The process tier: the guest is a local child process, confined as far as the kernel allows.

`oxydra vm --user-id U --workspace-root R --bootstrap-stdin` (from source or from the
archive) gets the envelope as one length-prefixed frame on stdin; its stdout and stderr
append to `<ws>/logs/oxydra-vm.{stdout,stderr}.log`. Hardening (`_hardening.py`) is applied
in the child before exec; the in-guest shell tool is enabled only under Landlock.
"""

from __future__ import annotations

import os
import subprocess

from oxydra.config.schema import AgentConfig
from oxydra.core.errors import RunnerError
from oxydra.core.tiers import SandboxTier
from oxydra.runner._bootstrap import (
    LaunchSpec,
    build_envelope,
    credential_names,
    guest_environment,
    startup_status,
)
from oxydra.runner._guest import LaunchResult, ProcessGuest, log_tail, open_log
from oxydra.runner._hardening import HardeningPlan, plan_hardening
from oxydra.runner._selfcmd import self_command, self_environment, unpack_natives
from oxydra.wire.envelope import encode_envelope

INSECURE_WARNING = (
    "process tier: the guest runs as a host process with your uid; Landlock limits its "
    "files, but there is no kernel isolation; use the container or micro_vm tier for "
    "untrusted input"
)


def guest_argv(spec: LaunchSpec) -> list[str]:
    """The guest's command line: `vm` with the envelope on stdin and the runner's `--set`s."""
    argv = self_command("vm")
    argv += ["--user-id", spec.ctx.user_id, "--workspace-root", str(spec.workspace.root)]
    argv.append("--bootstrap-stdin")
    for item in spec.ctx.overrides:
        argv += ["--set", item]
    return argv


def launch_process(
    spec: LaunchSpec, config: AgentConfig, plan: HardeningPlan | None = None
) -> LaunchResult:
    """Start the guest as a confined child process and hand it the envelope.

    Raises:
        RunnerError: `--insecure` missing (a user's file choosing `sandbox_tier = "process"`
            counts as the confirmation, as in the Rust runner), or the guest could not be
            started.
    """
    from_user_file = spec.ctx.user.behavior.sandbox_tier is SandboxTier.PROCESS
    if not (spec.ctx.insecure or from_user_file):
        raise RunnerError(
            "the process tier gives no kernel isolation and needs --insecure to confirm",
            hint="pass --insecure, or choose the container or micro_vm tier in runner.toml",
        )
    credentials = credential_names(config, spec.guest_environ)
    if plan is None:
        plan = plan_hardening(
            spec.workspace,
            spec.ctx.user.resources,
            environ=spec.guest_environ,
            home=spec.home,
            cwd=spec.cwd,
        )
    shell = plan.confined and spec.ctx.user.behavior.shell_enabled is not False
    why = "--insecure" if spec.ctx.insecure else "behavior.sandbox_tier in the user's file"
    degraded = [("insecure_process_tier", f"the guest runs as a host process ({why})")]
    status = startup_status(
        SandboxTier.PROCESS,
        shell=shell,
        sidecar=False,
        degraded=degraded + plan.degraded,
        hardening=plan.applied,
    )
    envelope = build_envelope(spec, status, credentials)
    frame = encode_envelope(envelope)
    env = self_environment(guest_environment(spec, credentials))
    unpack_natives()  # the guest reads the archive's native cache and cannot write it
    guest = _spawn(spec, guest_argv(spec), env, plan)
    _deliver(guest, frame, spec)
    return LaunchResult(guest=guest, envelope=envelope, warnings=[INSECURE_WARNING])


def _spawn(
    spec: LaunchSpec, argv: list[str], env: dict[str, str], plan: HardeningPlan
) -> ProcessGuest:
    out = open_log(spec.workspace.log_file("oxydra-vm", "stdout"))
    err = open_log(spec.workspace.log_file("oxydra-vm", "stderr"))
    try:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            cwd=spec.cwd,
            env=env,
            start_new_session=True,
            preexec_fn=plan.preexec,  # syscalls only: safe after fork
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise RunnerError(f"cannot start the guest ({argv[0]}): {exc}") from exc
    finally:
        os.close(out)
        os.close(err)
        plan.close()
    return ProcessGuest(popen, "oxydra-vm")


def _deliver(guest: ProcessGuest, frame: bytes, spec: LaunchSpec) -> None:
    stdin = guest.popen.stdin
    assert stdin is not None
    try:
        stdin.write(frame)
        stdin.close()
    except BrokenPipeError as exc:
        guest.stop(grace=1)
        tail = log_tail(spec.workspace.log_file("oxydra-vm", "stderr"))
        raise RunnerError(
            f"the guest exited before reading its bootstrap envelope:\n{tail}"
        ) from exc
