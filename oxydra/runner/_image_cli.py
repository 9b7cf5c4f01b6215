"""`oxydra runner image build [--pyz PATH] [--no-docker] [--no-disk]`: `key=value` lines out."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from oxydra.core.errors import RunnerError
from oxydra.runner._config import find_config, load_context
from oxydra.runner._selfcmd import archive_path

USAGE = "runner image build [--pyz PATH] [--no-docker] [--no-disk]"


def image_command(args: argparse.Namespace) -> int:
    """Parse `image ...` and run it."""
    parser = argparse.ArgumentParser(prog="oxydra runner image", usage=USAGE)
    parser.add_argument("action", choices=["build"])
    parser.add_argument("--pyz", help="the archive to put in the image (default: this one)")
    parser.add_argument("--no-docker", action="store_true", help="do not load it into Docker")
    parser.add_argument("--no-disk", action="store_true", help="no micro_vm disk and kernel")
    opts = parser.parse_args(args.rest)
    from oxydra.runner._container import docker_url
    from oxydra.runner._image import BuildRequest, build_images

    pyz = Path(opts.pyz).resolve() if opts.pyz else archive_path()
    if pyz is None:
        raise RunnerError(
            "from a source tree, `runner image build` needs --pyz: the image holds an archive",
            hint="build one with `python build_pyz.py` and pass --pyz dist/oxydra.pyz",
        )
    environ = dict(os.environ)
    request = BuildRequest(
        pyz=pyz,
        tags=_tags(args),
        docker_url=None if opts.no_docker else docker_url(environ),
        disk=not opts.no_disk,
        environ=environ,
    )
    facts = build_images(request, lambda line: print(line, file=sys.stderr, flush=True))
    for key, value in facts.items():
        print(f"{key}={value}", flush=True)
    return 0


def _tags(args: argparse.Namespace) -> tuple[str, ...]:
    """The configured image names (runner.toml when there is one, else the defaults)."""
    if find_config(args.config, Path.cwd(), Path.home()) is None:
        from oxydra.config.runner_schema import GuestImages

        images = GuestImages()
    else:
        images = load_context(config=args.config, user=args.user).config.guest_images
    return tuple(dict.fromkeys((images.oxydra_vm, images.shell_vm)))
