"""A loopback fake of the Docker Engine API on a Unix socket, for testing the container tier.

It implements the endpoints the `docker` SDK calls for our launcher, with the engine's
status codes and body shapes: `/_ping`, `/version`, `GET /images/{name}/json`,
`POST /images/create` (pull), `POST /containers/create`, `GET /containers/{id}/json`,
`POST /containers/{id}/start|stop|kill|wait`, `DELETE /containers/{id}` and
`GET /containers/{id}/logs` in the multiplexed stream format (8-byte header: stream type,
three zero bytes, big-endian length), following until the container stops. An optional
`/v1.NN` prefix is accepted on every path.

Use from tests::

    with FakeDocker(tmp_path / "docker.sock", images={"oxydra-vm:latest"}) as engine:
        client = docker.DockerClient(base_url=engine.url)
        ...
        body = engine.created["oxydra-container-alice-oxydra-vm"]  # the create payload
        engine.emit("oxydra-container-alice-oxydra-vm", "stdout", "hello\\n")

`requests` lists every `(method, path, query)`; `on_start` is called with a container's
name and create payload when it starts (a test can play the guest there).
"""

from __future__ import annotations

import functools
import json
import re
import socketserver
import struct
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

_PREFIX = re.compile(r"^/v\d+\.\d+")
_STREAM_TYPE = {"stdout": 1, "stderr": 2}


@dataclass
class FakeContainer:
    """One container's state in the fake engine."""

    id: str
    name: str
    body: dict[str, Any]
    status: str = "created"
    exit_code: int = 0
    logs: list[tuple[str, str, str]] = field(default_factory=list)  # (stream, ts, text)

    def inspect(self) -> dict[str, Any]:
        running = self.status == "running"
        return {
            "Id": self.id,
            "Name": "/" + self.name,
            "Image": self.body.get("Image"),
            "Config": {**self.body, "Tty": bool(self.body.get("Tty"))},
            "HostConfig": self.body.get("HostConfig", {}),
            "State": {"Status": self.status, "Running": running, "ExitCode": self.exit_code},
        }


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    engine: FakeDocker


class FakeDocker:
    """The fake engine; a context manager that serves on `socket_path` in threads."""

    def __init__(
        self,
        socket_path: Path,
        *,
        images: set[str] | None = None,
        pullable: set[str] | None = None,
        on_start: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.images = set(images or ())
        self.pullable = set(pullable or ())
        self.on_start = on_start
        self.containers: dict[str, FakeContainer] = {}
        self.created: dict[str, dict[str, Any]] = {}
        self.removed: list[str] = []
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.changed = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`unix://...`, for `docker.DockerClient(base_url=...)` or `DOCKER_HOST`."""
        return f"unix://{self.socket_path}"

    def __enter__(self) -> FakeDocker:
        self._server = _Server(str(self.socket_path), _Handler)
        self._server.engine = self
        # `shutdown` waits for the serve loop's next poll: poll often so teardown is quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self.changed:
            for container in self.containers.values():
                container.status = "exited"
            self.changed.notify_all()
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self.socket_path.unlink(missing_ok=True)

    # ---- what tests call ---------------------------------------------------------------

    def find(self, ref: str) -> FakeContainer | None:
        """A container by id, id prefix or name."""
        for container in self.containers.values():
            if ref in (container.id, container.name) or container.id.startswith(ref):
                return container
        return None

    def emit(
        self, name: str, stream: str, text: str, ts: str = "2026-01-01T00:00:00.000000000Z"
    ) -> None:
        """The container writes `text` to `stream`."""
        with self.changed:
            container = self.find(name)
            assert container is not None, name
            container.logs.append((stream, ts, text))
            self.changed.notify_all()

    def exit(self, name: str, code: int) -> None:
        """The container's process ends with `code`."""
        with self.changed:
            container = self.find(name)
            assert container is not None, name
            container.status, container.exit_code = "exited", code
            self.changed.notify_all()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the requests are recorded in `engine.requests`."""

    @property
    def engine(self) -> FakeDocker:
        return self.server.engine

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = _PREFIX.sub("", parts.path)
        query = parse_qs(parts.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null") if length else None
        self.engine.requests.append((method, path, query))
        for pattern, verb, handler in _ROUTES:
            match = re.fullmatch(pattern, path)
            if match and verb == method:
                handler(self, query, body, *match.groups())
                return
        self._json(404, {"message": f"page not found: {method} {path}"})

    # ---- responses ------------------------------------------------------------------------

    def _json(self, status: int, doc: Any) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _container(self, ref: str) -> FakeContainer | None:
        container = self.engine.find(ref)
        if container is None:
            self._json(404, {"message": f"No such container: {ref}"})
        return container

    # ---- endpoints -------------------------------------------------------------------------

    def ping(self, query: dict[str, list[str]], body: Any) -> None:
        data = b"OK"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Api-Version", "1.44")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def version(self, query: dict[str, list[str]], body: Any) -> None:
        self._json(
            200,
            {"Version": "25.0.0", "ApiVersion": "1.44", "MinAPIVersion": "1.24", "Os": "linux"},
        )

    def image_inspect(self, query: dict[str, list[str]], body: Any, name: str) -> None:
        if name in self.engine.images:
            self._json(200, {"Id": "sha256:" + "0" * 64, "RepoTags": [name]})
        else:
            self._json(404, {"message": f"No such image: {name}"})

    def image_pull(self, query: dict[str, list[str]], body: Any) -> None:
        image = f"{query['fromImage'][0]}:{query.get('tag', ['latest'])[0]}"
        if image not in self.engine.pullable:
            self._json(404, {"message": f"pull access denied for {image}"})
            return
        self.engine.images.add(image)
        self._json(200, {"status": f"Downloaded newer image for {image}"})

    def create(self, query: dict[str, list[str]], body: Any) -> None:
        name = query.get("name", [""])[0] or uuid.uuid4().hex[:12]
        if body.get("Image") not in self.engine.images:
            self._json(404, {"message": f"No such image: {body.get('Image')}"})
            return
        if self.engine.find(name) is not None:
            self._json(409, {"message": f"Conflict. The container name /{name} is already in use"})
            return
        container = FakeContainer(id=uuid.uuid4().hex * 2, name=name, body=body)
        self.engine.containers[container.id] = container
        self.engine.created[name] = body
        self._json(201, {"Id": container.id, "Warnings": []})

    def inspect(self, query: dict[str, list[str]], body: Any, ref: str) -> None:
        if (container := self._container(ref)) is not None:
            self._json(200, container.inspect())

    def start(self, query: dict[str, list[str]], body: Any, ref: str) -> None:
        if (container := self._container(ref)) is None:
            return
        with self.engine.changed:
            container.status = "running"
            self.engine.changed.notify_all()
        self._empty(204)
        if self.engine.on_start is not None:
            self.engine.on_start(container.name, container.body)

    def stop(self, query: dict[str, list[str]], body: Any, ref: str) -> None:
        if (container := self._container(ref)) is None:
            return
        if container.status != "running":
            self._empty(304)
            return
        self.engine.exit(container.id, 143)
        self._empty(204)

    def wait(self, query: dict[str, list[str]], body: Any, ref: str) -> None:
        if (container := self._container(ref)) is None:
            return
        with self.engine.changed:
            self.engine.changed.wait_for(lambda: container.status != "running")
        self._json(200, {"StatusCode": container.exit_code, "Error": None})

    def remove(self, query: dict[str, list[str]], body: Any, ref: str) -> None:
        if (container := self._container(ref)) is None:
            return
        if container.status == "running" and query.get("force", ["0"])[0] not in (
            "1",
            "True",
            "true",
        ):
            self._json(409, {"message": "You cannot remove a running container"})
            return
        with self.engine.changed:
            container.status = "removed"
            del self.engine.containers[container.id]
            self.engine.removed.append(container.name)
            self.engine.changed.notify_all()
        self._empty(204)

    def logs(self, query: dict[str, list[str]], body: Any, ref: str) -> None:
        if (container := self._container(ref)) is None:
            return
        wanted = {
            s for s in ("stdout", "stderr") if query.get(s, ["0"])[0] in ("1", "True", "true")
        }
        follow = query.get("follow", ["0"])[0] in ("1", "True", "true")
        stamps = query.get("timestamps", ["0"])[0] in ("1", "True", "true")
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.multiplexed-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        sent = 0

        def news(seen: int) -> bool:
            return len(container.logs) > seen or container.status != "running"

        while True:
            with self.engine.changed:
                self.engine.changed.wait_for(functools.partial(news, sent), timeout=5)
                pending, sent = container.logs[sent:], len(container.logs)
                ended = container.status != "running"
            for stream, ts, text in pending:
                if stream in wanted:
                    line = (f"{ts} {text}" if stamps else text).encode()
                    self.wfile.write(struct.pack(">BxxxL", _STREAM_TYPE[stream], len(line)) + line)
            self.wfile.flush()
            if ended or not follow:
                self.close_connection = True
                return


_ROUTES: list[tuple[str, str, Callable[..., None]]] = [
    (r"/_ping", "GET", _Handler.ping),
    (r"/_ping", "HEAD", _Handler.ping),
    (r"/version", "GET", _Handler.version),
    (r"/images/(.+)/json", "GET", _Handler.image_inspect),
    (r"/images/create", "POST", _Handler.image_pull),
    (r"/containers/create", "POST", _Handler.create),
    (r"/containers/([^/]+)/json", "GET", _Handler.inspect),
    (r"/containers/([^/]+)/start", "POST", _Handler.start),
    (r"/containers/([^/]+)/stop", "POST", _Handler.stop),
    (r"/containers/([^/]+)/kill", "POST", _Handler.stop),
    (r"/containers/([^/]+)/wait", "POST", _Handler.wait),
    (r"/containers/([^/]+)/logs", "GET", _Handler.logs),
    (r"/containers/([^/]+)", "DELETE", _Handler.remove),
]
