"""Launch a user's guest at the tier the runner config chose."""

from __future__ import annotations

from oxydra.config.schema import AgentConfig
from oxydra.core.tiers import SandboxTier
from oxydra.runner._bootstrap import LaunchSpec, check_provider_key, load_guest_config
from oxydra.runner._guest import LaunchResult


def launch_guest(spec: LaunchSpec) -> LaunchResult:
    """Check the guest's config and provider key, then start it at `spec.ctx.tier`.

    Raises:
        RunnerError: the config is invalid, no provider key is set (process and container
            tiers, whose guests get the key from our environment), or the launch failed.
    """
    config = load_guest_config(spec)
    match spec.ctx.tier:
        case SandboxTier.PROCESS:
            from oxydra.runner._process import launch_process

            check_provider_key(config, spec.guest_environ)
            return launch_process(spec, config)
        case SandboxTier.CONTAINER:
            from oxydra.runner._container import launch_container

            check_provider_key(config, spec.guest_environ)
            return launch_container(spec, config)
        case SandboxTier.MICRO_VM:
            images = spec.ctx.config.guest_images
            if images.firecracker_binary or images.firecracker_oxydra_vm_config:
                from oxydra.runner._firecracker import launch_micro_vm

                return launch_micro_vm(spec, config)
            return _launch_qemu(spec, config)


def _launch_qemu(spec: LaunchSpec, config: AgentConfig) -> LaunchResult:
    """QEMU's microvm where Firecracker is not configured (`_qemu.py`)."""
    from oxydra.runner._buildid import own_build_id
    from oxydra.runner._image import micro_vm_image
    from oxydra.runner._qemu import launch_qemu

    check_provider_key(config, spec.guest_environ)
    image, warning = micro_vm_image(spec.environ, own_build_id())
    launch = launch_qemu(spec, config, image)
    if warning:
        launch.warnings.append(warning)
    return launch
