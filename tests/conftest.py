"""Test-wide guards: no connection leaves the machine, whatever the code under test does."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_local(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _is_local(address):
        raise AssertionError(f"test tried to connect to non-loopback address {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _is_local(address):
        raise AssertionError(f"test tried to connect to non-loopback address {address!r}")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and not _is_local((name, 0)):
        raise AssertionError(f"test tried to resolve non-local name {name!r} through real DNS")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that connects to, or resolves, anything but loopback."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)


@pytest.fixture(scope="session")
def postgres_server() -> Any:
    """A PostgreSQL 16 + pgvector cluster on 127.0.0.1 for this test process (pgserver's
    binaries; oxydra/testing/postgres.py), started on first use."""
    from oxydra.testing.postgres import LocalPostgres

    server = LocalPostgres.start()  # under /tmp: the server user must reach it
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server: Any, request: pytest.FixtureRequest) -> str:
    """A fresh database (pgvector enabled) on the shared cluster; its URL."""
    import re as _re
    import uuid

    stem = _re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    return str(postgres_server.create_database(f"t_{stem}_{uuid.uuid4().hex[:8]}"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """A whole-suite run over xdist starts building the archive at once, in the controller
    (which otherwise idles), so the archive tests find it built or nearly so instead of every
    worker that reaches one first waiting out the whole build (about 40 s of CPU with the
    LZMA-compressed natives). It is the same once-per-run build (`tests/support_once.py`)."""
    import os
    import threading

    config = session.config
    if os.environ.get("PYTEST_XDIST_WORKER") or not getattr(config.option, "numprocesses", 0):
        return
    if config.args_source is not pytest.Config.ArgsSource.TESTPATHS:
        return  # a chosen subset may not need the archive at all
    from tests.support_once import built_archive

    factory = config._tmp_path_factory  # the run dir the workers' temp dirs live in
    threading.Thread(target=built_archive, args=(factory,), daemon=True).start()
