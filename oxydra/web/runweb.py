"""`oxydra runner web`: flags and config to a listening configurator.

A non-loopback bind needs TLS (`[web] tls_cert_file`/`tls_key_file`) or `--insecure-http`,
and token auth; loopback is the default.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import msgspec

from oxydra.config.runner_schema import RunnerConfig
from oxydra.core.errors import RunnerError
from oxydra.web import _configfiles as files
from oxydra.web._http import is_loopback, loopback_hosts
from oxydra.web._server import serve_http
from oxydra.web.configurator import Configurator, Setup


def plan_bind(
    web: Any, bind: str, *, insecure_http: bool, token: str | None
) -> tuple[str, int, bool]:
    """Host, port and whether TLS is used; refuses an unsafe non-loopback bind.

    Raises:
        RunnerError: naming what to set.
    """
    host, _, port_text = bind.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError as exc:
        raise RunnerError(f"web bind {bind!r}: expected host:port") from exc
    tls = bool(web.tls_cert_file and web.tls_key_file)
    if not is_loopback(host):
        if not tls and not insecure_http:
            raise RunnerError(
                f"web bind {bind} is not loopback: set [web] tls_cert_file and tls_key_file, "
                "or pass --insecure-http to serve plain HTTP anyway"
            )
        if not token:
            raise RunnerError(
                f'web bind {bind} is not loopback: set [web] auth_mode = "token" with '
                "auth_token_env (or auth_token)"
            )
    return host, port, tls


def tls_context(cert_file: str | None, key_file: str | None) -> Any:
    """A server TLS context from `[web] tls_cert_file` / `tls_key_file` (TLS 1.2 at least).

    Raises:
        RunnerError: naming the files when they cannot be loaded.
    """
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert_file), str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise RunnerError(
            f"[web] tls_cert_file {cert_file} / tls_key_file {key_file}: {exc}"
        ) from exc
    return context


async def serve_configurator(
    setup: Setup, host: str, port: int, stop: asyncio.Event, ssl: Any = None
) -> tuple[str, int]:
    """Serve until `stop` is set; returns after closing. Prints the URL once listening."""
    configurator = Configurator(setup, set())
    server = await serve_http(configurator.handle, host, port, ssl=ssl)
    bound_port = server.address[1]
    name = f"[{host}]" if ":" in host else host
    configurator.hosts = {f"{name}:{bound_port}".lower()} | (
        loopback_hosts(bound_port) if is_loopback(host) else set()
    )
    scheme = "https" if ssl else "http"
    print(f"web_url={scheme}://{name}:{bound_port}/", flush=True)
    try:
        await stop.wait()
    finally:
        await server.close()
    return host, bound_port


def run_configurator(args: argparse.Namespace) -> int:
    """Entry of `oxydra runner web`."""
    import signal

    from oxydra.runner._config import find_config

    try:
        path = (
            find_config(args.config, Path.cwd(), Path.home())
            or Path.cwd() / ".oxydra" / "runner.toml"
        )
        runner = files.read_tree(path)
        errors = files.check(runner, RunnerConfig, str(path))
        if errors:
            raise RunnerError("; ".join(e["message"] for e in errors))
        web = msgspec.convert(runner, RunnerConfig).web
        token = None
        if web.auth_mode == "token":
            token = os.environ.get(web.auth_token_env) if web.auth_token_env else web.auth_token
            if not token:
                raise RunnerError(
                    '[web] auth_mode = "token" but no token is set (auth_token_env or auth_token)'
                )
        host, port, tls = plan_bind(
            web, args.bind or web.bind, insecure_http=args.insecure_http, token=token
        )
        ssl_context = tls_context(web.tls_cert_file, web.tls_key_file) if tls else None
    except RunnerError as exc:
        print(f"runner error: {exc}", file=sys.stderr, flush=True)
        return 1
    setup = Setup(path, insecure_tier=args.insecure, token=token, secure=tls)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve_configurator(setup, host, port, stop, ssl_context)

    asyncio.run(main())
    return 0
