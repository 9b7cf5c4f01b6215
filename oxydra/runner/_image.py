"""`oxydra runner image build`: the guest image for the container and micro_vm tiers, locally.

One rootfs (`_rootfs.py`) serves both tiers: it is loaded into the Docker engine with
`docker import` under both configured names (`[guest_images] oxydra_vm` and `shell_vm`),
labelled `oxydra.build_id`, and written as `<cache>/<build id>/rootfs.ext4` beside the
kernel and initramfs (`_kernel.py`) and a `manifest.json`. The runner refuses a guest whose
recorded build id is not its own (`check_build_id`), with the command that rebuilds it.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oxydra.core.errors import RunnerError
from oxydra.runner._buildid import archive_build_id
from oxydra.runner._rootfs import (
    GUEST_PATH,
    PYZ_CACHE,
    Log,
    compose,
    ensure_base,
    guest_cache,
    guest_ids,
    make_ext4,
)
from oxydra.runner._selfcmd import shown_command

BUILD_LABEL = "oxydra.build_id"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class BuildRequest:
    """What `runner image build` was asked for."""

    pyz: Path
    tags: tuple[str, ...]
    docker_url: str | None  # None: do not load into an engine
    disk: bool
    environ: Mapping[str, str]


def build_images(request: BuildRequest, log: Log) -> dict[str, str]:
    """Build the rootfs, load it into Docker, make the microVM disk; the `key=value` facts.

    Raises:
        RunnerError: a step failed (the message names it and how to fix it).
    """
    build_id = archive_build_id(request.pyz)
    cache = guest_cache(request.environ)
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{build_id}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two builds at once: the second reuses the first's
        return _build_locked(request, log, build_id, cache)


def _build_locked(request: BuildRequest, log: Log, build_id: str, cache: Path) -> dict[str, str]:
    out = cache / build_id
    out.mkdir(parents=True, exist_ok=True)
    ids = guest_ids(request.environ)
    rootfs = out / "rootfs.tar"
    if not rootfs.is_file():
        base = ensure_base(cache, log)
        log(f"rootfs: composing {rootfs}")
        compose(base, request.pyz, build_id, ids, rootfs)
    prune(cache, keep=out)
    facts = {"build_id": build_id, "rootfs_tar": str(rootfs), "guest_uid": str(ids[0])}
    if request.docker_url is not None:
        import_into_docker(request.docker_url, rootfs, request.tags, build_id, ids)
        facts["docker_images"] = ",".join(request.tags)
    if request.disk:
        from oxydra.runner._kernel import ensure_kernel

        disk = out / "rootfs.ext4"
        if not disk.is_file():
            log(f"disk: writing {disk}")
            with tempfile.TemporaryDirectory(dir=cache, prefix=".disk-") as scratch:
                make_ext4(rootfs, disk, Path(scratch))
        kernel = ensure_kernel(cache, log)
        shutil.copy2(kernel.vmlinux, out / "vmlinux")
        shutil.copy2(kernel.initramfs, out / "initramfs.cpio.gz")
        manifest = {"build_id": build_id, "kernel_version": kernel.version, "uid": ids[0]}
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        facts["micro_vm_dir"] = str(out)
    return facts


KEEP_BUILDS = 2


def prune(cache: Path, keep: Path) -> None:
    """Remove the images of older builds (about 900 MB each), keeping the newest few."""
    builds = [p for p in cache.iterdir() if p.is_dir() and (p / "rootfs.tar").exists()]
    builds = sorted((p for p in builds if p != keep), key=lambda p: p.stat().st_mtime)
    for old in builds[: max(0, len(builds) - (KEEP_BUILDS - 1))]:
        shutil.rmtree(old, ignore_errors=True)


def import_into_docker(
    url: str, rootfs: Path, tags: tuple[str, ...], build_id: str, ids: tuple[int, int]
) -> None:
    """`docker import` the rootfs under each tag, with our user, PATH and build label."""
    import docker
    import docker.errors
    import requests.exceptions

    changes = [
        f"USER {ids[0]}:{ids[1]}",
        f"ENV PATH={GUEST_PATH}",
        f"ENV OXYDRA_PYZ_CACHE={PYZ_CACHE}",
        f"LABEL {BUILD_LABEL}={build_id}",
        "WORKDIR /",
    ]
    try:
        client = docker.DockerClient(base_url=url, timeout=300)
        try:
            first, *rest = tags
            repo, _, tag = first.rpartition(":") if ":" in first else (first, "", "latest")
            client.api.import_image(src=str(rootfs), repository=repo, tag=tag, changes=changes)
            for other in rest:
                orepo, _, otag = other.rpartition(":") if ":" in other else (other, "", "latest")
                client.api.tag(first, orepo, otag)
        finally:
            client.close()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise RunnerError(f"docker: import the guest image into {url}: {exc}") from exc


def rebuild_hint() -> str:
    """The command that rebuilds the guest image for this runner."""
    return f"rebuild it with `{shown_command('runner', 'image', 'build')}`"


def check_build_id(found: str | None, own: str | None, what: str) -> str | None:
    """Refuse a guest built from another archive; a warning when we run from source.

    Raises:
        RunnerError: the guest records another build id than this runner's (or none).
    """
    if own is None:
        return f"running from a source tree: {what}'s build id ({found}) is not checked"
    if found != own:
        raise RunnerError(
            f"{what} was built from oxydra build {found or 'unknown'}, "
            f"but this runner is build {own}",
            hint=rebuild_hint(),
        )
    return None


def image_build_id(image_attrs: dict[str, Any]) -> str | None:
    """The build label of an inspected Docker image."""
    labels = (image_attrs.get("Config") or {}).get("Labels") or {}
    value = labels.get(BUILD_LABEL)
    return str(value) if value else None


def micro_vm_image(environ: Mapping[str, str], own: str | None) -> tuple[Path, str | None]:
    """This build's microVM image directory (from a source tree: the newest one), checked.

    Raises:
        RunnerError: none was built, or it was built from another archive.
    """
    cache = guest_cache(environ)
    if own is not None:
        folder = cache / own
    else:
        built = sorted(cache.glob(f"*/{MANIFEST}"), key=lambda p: p.stat().st_mtime)
        folder = built[-1].parent if built else cache / "none"
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise RunnerError(
            f"no micro_vm guest image in {folder} ({exc.__class__.__name__})",
            hint=rebuild_hint().replace("rebuild", "build"),
        ) from exc
    warning = check_build_id(manifest.get("build_id"), own, f"the micro_vm image {folder}")
    return folder, warning
