"""A throwaway PostgreSQL 16 with pgvector on 127.0.0.1, for tests and benchmarks.

The binaries come from the `pgserver` wheel (a dev dependency); they are located with
`importlib.util.find_spec`, never imported: `import pgserver` warns (platformdirs) and the
test suite turns warnings into errors. PostgreSQL refuses to run as root, so as root the
server runs as the system user `pgserver` (created when missing) through `runuser`.
Durability is off (`fsync=off`): this cluster exists for one test run.

    with LocalPostgres.start(tmp_dir) as pg:
        url = pg.create_database("t1")
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

SUPERUSER = "postgres"
_RUN_AS = "pgserver"


def binaries() -> Path | None:
    """The `bin/` directory of the pgserver wheel's PostgreSQL, or None when not installed."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if (path / "postgres").exists() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    found = subprocess.run(["id", "-u", _RUN_AS], capture_output=True, check=False)
    if found.returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", _RUN_AS], check=True, capture_output=True
        )
    return ["runuser", "-u", _RUN_AS, "--"]


class LocalPostgres:
    """A running cluster: `url(dbname)` to connect, `stop()` (or `with`) to end it."""

    def __init__(
        self, root: Path, port: int, bin_dir: Path, prefix: list[str], password: str | None
    ) -> None:
        self.root = root
        self.port = port
        self.password = password
        self._bin = bin_dir
        self._prefix = prefix

    @classmethod
    def start(cls, parent: Path | None = None, *, password: str | None = None) -> LocalPostgres:
        """initdb and start a cluster in a new directory under `parent` (default: /tmp).

        With `password`, TCP logins need it (scram-sha-256; the superuser's is `password`);
        without, every login is trusted.

        Raises:
            RuntimeError: the pgserver wheel is missing, or initdb/start failed.
        """
        bin_dir = binaries()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL binaries not found: pip install pgserver")
        root = Path(tempfile.mkdtemp(prefix="oxy-pg-", dir=parent))
        root.chmod(0o711)
        prefix = _as_server_user()
        if prefix:
            shutil.chown(root, _RUN_AS)
        data = root / "data"
        auth = ["--auth=trust"]
        if password is not None:
            pwfile = root / "pw"
            pwfile.write_text(password + "\n")
            if prefix:
                shutil.chown(pwfile, _RUN_AS)
            auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        cls._run(prefix, bin_dir / "initdb", "-D", str(data), "-U", SUPERUSER, *auth,
                 "-E", "UTF8", "--no-sync")  # fmt: skip
        last = ""
        for _ in range(5):  # a port picked free can be taken before the server binds it
            port = _free_port()
            options = (
                f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=200"
            )
            done = subprocess.run(
                [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l",
                 str(root / "log"), "-o", options, "start"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode == 0:
                return cls(root, port, bin_dir, prefix, password)
            last = done.stderr + (root / "log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"PostgreSQL did not start: {last}")

    @staticmethod
    def _run(prefix: list[str], *argv: str | Path) -> None:
        done = subprocess.run(
            [*prefix, *map(str, argv)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr or done.stdout}")

    def url(self, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        """A libpq URL for `dbname` on this cluster."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run `sql` with psql; its output (raises RuntimeError on failure)."""
        env = {**os.environ, "PGPASSWORD": self.password} if self.password else None
        done = subprocess.run(
            [str(self._bin / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
             "-d", self.url(dbname), "-c", sql],
            capture_output=True, text=True, check=False, env=env,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr}")
        return done.stdout

    def create_database(self, name: str, *, vector: bool = True, owner: str | None = None) -> str:
        """Create database `name` (with the pgvector extension unless `vector` is False);
        with `owner`, that role (`create_role`) owns it and the URL logs in as it."""
        self.psql(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))
        if owner:
            return self.url(name, owner)
        if vector:
            self.psql("CREATE EXTENSION vector", dbname=name)
        return self.url(name)

    def create_role(self, name: str) -> None:
        """A login role that is not a superuser (so it may not create pgvector)."""
        self.psql(f'CREATE ROLE "{name}" LOGIN')

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        with contextlib.suppress(RuntimeError):
            self._run(self._prefix, self._bin / "pg_ctl", "-D", self.root / "data",
                      "-m", "fast", "-w", "stop")  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
