"""The configurator behind `oxydra runner web` (`runweb`): REST under `/api/v1`.

Envelopes: `{"data": ..., "meta": {"request_id": ...}}` on success and
`{"error": {"code", "message", "details"?}, "meta": {...}}` on failure, so the Rust
version's frontend and scripts keep working. Routes are listed in `ROUTES` below; ours
beside theirs are `/api/v1/auth/*` (browser sign-in) and the page at `/`.

Security rules (docs/web.md):
1. Loopback by default; another address needs `tls_cert_file`/`tls_key_file` in
   `[web]` or `--insecure-http`, and token auth (`auth_mode = "token"`).
2. Every request's `Host` must be one this server was bound for (DNS rebinding).
3. A request from a browser (it carries `Origin` or `Sec-Fetch-Site`) that changes state must
   come from the page's own origin and carry `X-CSRF-Token`; a script (no `Origin`) must send
   the token as `Authorization: Bearer` when auth is on.
4. No secret value leaves the process: GETs and diffs mask them; a masked value sent back
   means "unchanged".
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from oxydra.config.runner_schema import RunnerConfig, UserConfig
from oxydra.config.schema import AgentConfig
from oxydra.core.errors import OxydraError, RunnerError
from oxydra.core.log import get_logger
from oxydra.web import _configfiles as files
from oxydra.web._assets import Assets
from oxydra.web._auth import COOKIE, BrowserSessions, SignInLimiter
from oxydra.web._guests import follow_logs, host_memory_mib, spawn
from oxydra.web._http import Reply, cookie_value, json_reply
from oxydra.web._server import HttpRequest

_log = get_logger(__name__)
_USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
Route = Callable[["Configurator", HttpRequest, list[str]], Awaitable[Reply]]


class ApiError(Exception):
    """An answer in the error envelope."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


@dataclass
class Setup:
    """Where the configurator's files are and how it authenticates."""

    runner_toml: Path
    insecure_tier: bool = False
    token: str | None = None
    secure: bool = False
    home: Path | None = None  # where the loader's home layers are (None: the real home)

    @property
    def base(self) -> Path:
        return self.runner_toml.parent

    @property
    def agent_toml(self) -> Path:
        return self.base / "agent.toml"


class Configurator:
    """The REST API and page of `runner web`."""

    def __init__(
        self, setup: Setup, hosts: set[str], *, launcher: Callable[..., Any] | None = None
    ) -> None:
        self.setup = setup
        self.hosts = hosts
        self.scheme = "https" if setup.secure else "http"
        self.sessions = BrowserSessions({setup.token: "operator"} if setup.token else {})
        self.limiter = SignInLimiter()
        self.csrf = secrets.token_urlsafe(32)  # auth disabled: one per process
        self.assets = Assets()
        self.launch = launcher or spawn

    # ---- request pipeline --------------------------------------------------------------

    async def handle(self, request: HttpRequest) -> Reply:
        """Check, route, and wrap the answer in the envelope."""
        rid = uuid.uuid4().hex
        try:
            self._check(request)
            path = request.path
            if request.method == "GET" and path == "/":
                page = self.assets.page("config.html")
                return Reply(200, page, "text/html; charset=utf-8", [("Cache-Control", "no-cache")])
            if request.method == "GET" and path.startswith("/static/"):
                asset = self.assets.find(path)
                if asset is None:
                    raise ApiError(404, "not_found", "no such asset")
                cache = ("Cache-Control", "public, max-age=31536000, immutable")
                return Reply(200, asset.body, asset.content_type, [cache])
            if not path.startswith("/api/v1/"):
                raise ApiError(404, "not_found", f"no route {path}")
            route, params = _match(request.method, path.removeprefix("/api/v1"))
            if not route.__name__.startswith("auth_"):
                self._authorize(request)
            result = await route(self, request, params)
            if isinstance(result, Reply):
                return result
            return json_reply(200, {"data": result, "meta": {"request_id": rid}})
        except ApiError as exc:
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.details is not None:
                error["details"] = exc.details
            return json_reply(exc.status, {"error": error, "meta": {"request_id": rid}})
        except (OxydraError, OSError) as exc:
            body = {"error": {"code": "internal", "message": str(exc)}, "meta": {"request_id": rid}}
            return json_reply(500, body)

    def _check(self, request: HttpRequest) -> None:
        if request.headers.get("host", "").lower() not in self.hosts:
            raise ApiError(421, "unknown_host", "this server does not answer to that host name")
        browser = "origin" in request.headers or "sec-fetch-site" in request.headers
        if request.headers.get("sec-fetch-site", "same-origin") not in {"same-origin", "none"}:
            raise ApiError(403, "cross_site", "cross-site request refused")
        if request.method in {"GET", "HEAD"}:
            return
        if not browser:
            return
        if not self.own_origin(request):
            raise ApiError(403, "bad_origin", "cross-origin request refused")

    def own_origin(self, request: HttpRequest) -> bool:
        host = request.headers.get("host", "").lower()
        return host in self.hosts and request.headers.get("origin", "") == f"{self.scheme}://{host}"

    def _authorize(self, request: HttpRequest) -> None:
        """A bearer token (scripts), or a browser session plus CSRF token on state changes."""
        scheme, _sep, token = request.headers.get("authorization", "").partition(" ")
        if self.setup.token and scheme.lower() == "bearer":
            if self.sessions.user_for_token(token.strip()) is None:
                raise ApiError(401, "unauthorized", "wrong token")
            return
        browser = "origin" in request.headers or "sec-fetch-site" in request.headers
        csrf = self.csrf
        if self.setup.token:
            session = self.sessions.lookup(cookie_value(request.headers.get("cookie"), COOKIE))
            if session is None:
                raise ApiError(401, "unauthorized", "sign in, or send the token as a bearer")
            csrf = session.csrf_token
        if request.method not in {"GET", "HEAD"} and browser:
            presented = request.headers.get("x-csrf-token", "")
            if not secrets.compare_digest(csrf.encode(), presented.encode()):
                raise ApiError(403, "csrf", "missing or wrong CSRF token")

    # ---- auth (ours) -------------------------------------------------------------------

    async def auth_session(self, request: HttpRequest, _: list[str]) -> Any:
        if not self.setup.token:
            return {"auth_mode": "disabled", "csrf_token": self.csrf}
        session = self.sessions.lookup(cookie_value(request.headers.get("cookie"), COOKIE))
        if session is None:
            raise ApiError(401, "unauthorized", "not signed in")
        return {"auth_mode": "token", "csrf_token": session.csrf_token}

    async def auth_signin(self, request: HttpRequest, _: list[str]) -> Any:
        if not self.setup.token:
            return {"auth_mode": "disabled", "csrf_token": self.csrf}
        wait = self.limiter.retry_after(request.peer)
        if wait:
            raise ApiError(429, "rate_limited", f"too many failed sign-ins; retry in {wait} s")
        scheme, _sep, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or self.sessions.user_for_token(token.strip()) is None:
            self.limiter.failed(request.peer)
            raise ApiError(401, "unauthorized", "wrong token")
        cookie, session = self.sessions.sign_in("operator")
        secure = "; Secure" if self.setup.secure else ""
        set_cookie = (
            f"{COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Strict; "
            f"Max-Age={int(self.sessions.max_age_secs)}{secure}"
        )
        body = {"data": {"auth_mode": "token", "csrf_token": session.csrf_token}, "meta": {}}
        return json_reply(200, body, [("Set-Cookie", set_cookie)])

    async def auth_signout(self, request: HttpRequest, _: list[str]) -> Any:
        self._authorize(request)
        self.sessions.sign_out(cookie_value(request.headers.get("cookie"), COOKIE))
        return {"signed_out": True}

    # ---- meta, catalog, onboarding -----------------------------------------------------

    async def meta(self, request: HttpRequest, _: list[str]) -> Any:
        from oxydra import __version__

        memory = host_memory_mib()
        return {
            "version": __version__,
            "paths": {
                "runner_config": str(self.setup.runner_toml),
                "agent_config": str(self.setup.agent_toml),
                "workspace_root": str(self._runner().workspace_root),
            },
            "host": {
                "memory_mib": memory,
                "cpus": os.cpu_count(),
                "low_memory": memory is not None and memory < 2048,
                "low_power": (os.cpu_count() or 1) < 2,
            },
        }

    async def meta_schema(self, request: HttpRequest, _: list[str]) -> Any:
        return {
            "runner": msgspec.json.schema(RunnerConfig),
            "agent": msgspec.json.schema(AgentConfig),
            "user": msgspec.json.schema(UserConfig),
        }

    async def catalog(self, request: HttpRequest, _: list[str]) -> Any:
        from oxydra.catalog import load_catalog

        catalog = await asyncio.to_thread(load_catalog, self._environ())
        models = []
        for provider, model in catalog.models():
            cost = getattr(model, "cost", None)
            models.append(
                {
                    "provider": provider,
                    "id": model.id,
                    "name": model.name,
                    "tool_call": model.tool_call,
                    "cost": msgspec.to_builtins(cost) if cost is not None else None,
                }
            )
        return {"models": models}

    async def catalog_status(self, request: HttpRequest, _: list[str]) -> Any:
        from oxydra.catalog import load_catalog, user_cache_path

        environ = self._environ()
        catalog = await asyncio.to_thread(load_catalog, environ)
        cache = user_cache_path(environ)
        cached_at = None
        if cache.exists():
            import datetime

            stamp = datetime.datetime.fromtimestamp(cache.stat().st_mtime, datetime.UTC)
            cached_at = stamp.isoformat()
        return {
            "models": sum(1 for _ in catalog.models()),
            "source": "user cache" if cached_at else "pinned snapshot",
            "cache_path": str(cache),
            "cached_at": cached_at,
        }

    async def catalog_refresh(self, request: HttpRequest, _: list[str]) -> Any:
        """Download the catalog (`{"pinned": bool}`) into the user cache, as `catalog fetch`."""
        from oxydra.catalog import fetch_catalog
        from oxydra.config.loader import ConfigSources, load_agent_config
        from oxydra.core.errors import CatalogError, ConfigError

        body = _json_body(request) if request.body else {}
        environ = self._environ()
        try:
            sources = ConfigSources(cwd=self.setup.base.parent, home=self.setup.home)
            config = load_agent_config(sources).config
            fetched = await asyncio.to_thread(
                fetch_catalog, config, environ, pinned=bool(body.get("pinned", False))
            )
        except ConfigError as exc:
            raise ApiError(422, "invalid_config", exc.message, exc.problems) from exc
        except CatalogError as exc:
            raise ApiError(502, "catalog_unavailable", exc.message) from exc
        return msgspec.to_builtins(fetched)

    def _environ(self) -> dict[str, str]:
        """The process environment, with HOME pointed at `setup.home` when one is set."""
        environ = dict(os.environ)
        if self.setup.home is not None:
            environ["HOME"] = str(self.setup.home)
        return environ

    async def onboarding_status(self, request: HttpRequest, _: list[str]) -> Any:
        agent = files.read_tree(self.setup.agent_toml)
        registry = agent.get("providers", {}).get("registry", {})
        keyed = sorted(
            name
            for name, entry in registry.items()
            if isinstance(entry, dict) and (entry.get("api_key") or entry.get("api_key_env"))
        )
        env_keys = [
            k
            for k in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")
            if os.environ.get(k)
        ]
        users = sorted(self._runner().users)
        return {
            "runner_config_exists": self.setup.runner_toml.exists(),
            "providers_with_keys": keyed,
            "environment_keys": env_keys,
            "has_provider_key": bool(keyed or env_keys),
            "users": users,
            "complete": bool((keyed or env_keys) and users),
        }

    # ---- config files ------------------------------------------------------------------

    async def get_runner(self, request: HttpRequest, _: list[str]) -> Any:
        return files.masked(files.read_tree(self.setup.runner_toml))

    async def patch_runner(self, request: HttpRequest, _: list[str]) -> Any:
        return self._edit(self.setup.runner_toml, RunnerConfig, request, dry_run=False)

    async def validate_runner(self, request: HttpRequest, _: list[str]) -> Any:
        return self._edit(self.setup.runner_toml, RunnerConfig, request, dry_run=True)

    async def get_agent(self, request: HttpRequest, _: list[str]) -> Any:
        return files.masked(files.read_tree(self.setup.agent_toml))

    async def patch_agent(self, request: HttpRequest, _: list[str]) -> Any:
        return self._edit(self.setup.agent_toml, AgentConfig, request, dry_run=False)

    async def validate_agent(self, request: HttpRequest, _: list[str]) -> Any:
        return self._edit(self.setup.agent_toml, AgentConfig, request, dry_run=True)

    async def effective_agent(self, request: HttpRequest, _: list[str]) -> Any:
        """Each effective value with the layer it came from, secrets masked."""
        from oxydra.config.loader import ConfigSources, load_agent_config
        from oxydra.core.errors import ConfigError

        try:
            sources = ConfigSources(cwd=self.setup.base.parent, home=self.setup.home)
            loaded = load_agent_config(sources)
        except ConfigError as exc:
            raise ApiError(422, "invalid_config", exc.message, exc.problems) from exc
        tree = files.masked(msgspec.to_builtins(loaded.config))
        values = []
        for dotted, value in _flatten(tree):
            values.append(
                {"key": dotted, "value": value, "source": _source(loaded.sources, dotted)}
            )
        return {"values": values, "layers": loaded.layers, "warnings": loaded.warnings}

    async def list_users(self, request: HttpRequest, _: list[str]) -> Any:
        runner = self._runner()
        return [
            {"user_id": uid, "config_path": e.config_path}
            for uid, e in sorted(runner.users.items())
        ]

    async def create_user(self, request: HttpRequest, _: list[str]) -> Any:
        body = _json_body(request)
        user_id = str(body.get("user_id", ""))
        if not _USER_ID.fullmatch(user_id):
            raise ApiError(
                422,
                "invalid_user_id",
                f"bad user id {user_id!r}",
                [{"field": "user_id", "message": "letters, digits, _ . -"}],
            )
        if user_id in self._runner().users:
            raise ApiError(409, "exists", f"user {user_id} already exists")
        path = self.setup.base / "users" / f"{user_id}.toml"
        outcome = files.edit(path, body.get("config") or {}, UserConfig, dry_run=False)
        if outcome.errors:
            raise ApiError(422, "invalid_config", "the user's config is invalid", outcome.errors)
        files.edit(
            self.setup.runner_toml,
            {"users": {user_id: {"config_path": f"users/{user_id}.toml"}}},
            RunnerConfig,
            dry_run=False,
        )
        return {"user_id": user_id, "config_path": f"users/{user_id}.toml"}

    async def get_user(self, request: HttpRequest, params: list[str]) -> Any:
        return files.masked(files.read_tree(self._user_path(params[0])))

    async def patch_user(self, request: HttpRequest, params: list[str]) -> Any:
        return self._edit(self._user_path(params[0]), UserConfig, request, dry_run=False)

    async def validate_user(self, request: HttpRequest, params: list[str]) -> Any:
        return self._edit(self._user_path(params[0]), UserConfig, request, dry_run=True)

    async def delete_user(self, request: HttpRequest, params: list[str]) -> Any:
        self._user_path(params[0])
        outcome = files.edit(
            self.setup.runner_toml, {"users": {params[0]: None}}, RunnerConfig, dry_run=False
        )
        return {"deleted": params[0], "backup": outcome.backup}

    def _edit(
        self, path: Path, schema: type[msgspec.Struct], request: HttpRequest, *, dry_run: bool
    ) -> Any:
        patch = _json_body(request)
        checker = None
        if schema is AgentConfig:
            cwd = self.setup.base.parent
            home = self.setup.home
            checker = lambda tree: files.check_agent(tree, path, cwd, home)  # noqa: E731
        outcome = files.edit(path, patch, schema, dry_run=dry_run, checker=checker)
        if outcome.errors:
            raise ApiError(
                422,
                "invalid_config",
                f"{len(outcome.errors)} problem(s) in {path.name}",
                outcome.errors,
            )
        return {
            "valid": True,
            "written": outcome.written,
            "backup": outcome.backup,
            "diff": outcome.diff,
        }

    def _runner(self) -> RunnerConfig:
        tree = files.read_tree(self.setup.runner_toml)
        errors = files.check(tree, RunnerConfig, str(self.setup.runner_toml))
        if errors:
            raise ApiError(422, "invalid_config", "runner.toml is invalid", errors)
        return msgspec.convert(tree, RunnerConfig)

    def _user_path(self, user_id: str) -> Path:
        entry = self._runner().users.get(user_id)
        if entry is None:
            raise ApiError(404, "unknown_user", f"no user {user_id!r} in runner.toml")
        path = (self.setup.base / entry.config_path).resolve()
        if not path.is_relative_to(self.setup.base.resolve()):
            raise ApiError(422, "bad_path", "the user's config_path leaves the config directory")
        return path

    # ---- status, control, logs ----------------------------------------------------------

    async def status_all(self, request: HttpRequest, _: list[str]) -> Any:
        users = sorted(self._runner().users) or ["default"]
        return [await asyncio.to_thread(self._status, u) for u in users]

    async def status_one(self, request: HttpRequest, params: list[str]) -> Any:
        return await asyncio.to_thread(self._status, self._known(params[0]))

    def _status(self, user_id: str) -> dict[str, Any]:
        from oxydra.core.errors import RunnerNotRunningError
        from oxydra.runner._control import control_request
        from oxydra.wire.control import ControlHealth, HealthCheckRequest

        ctx = self._context(user_id)
        socket = ctx.user_root / "ipc" / "runner-control.sock"
        try:
            answer = control_request(socket, HealthCheckRequest())
        except (RunnerNotRunningError, RunnerError):
            return {"user_id": user_id, "running": False, "tier": str(ctx.tier)}
        if not isinstance(answer, ControlHealth):
            return {"user_id": user_id, "running": False, "tier": str(ctx.tier)}
        return {
            "user_id": user_id,
            "running": True,
            "tier": str(ctx.tier),
            **msgspec.to_builtins(answer),
        }

    async def control(self, request: HttpRequest, params: list[str]) -> Any:
        user_id, action = self._known(params[0]), params[1]
        # without a runner.toml yet, the runner finds its defaults as on the command line
        found = self.setup.runner_toml.exists()
        argv = [*(["--config", str(self.setup.runner_toml)] if found else []), "--user", user_id]
        if self.setup.insecure_tier:
            argv.append("--insecure")
        pid = self.launch([*argv, action])
        return {"user_id": user_id, "action": action, "accepted": True, "pid": pid}

    async def logs(self, request: HttpRequest, params: list[str]) -> Any:
        from oxydra.runner._logs import read_logs
        from oxydra.runner.cli import locate
        from oxydra.wire.control import MAX_LOG_TAIL, LogsRequest

        ctx = self._context(self._known(params[0]))
        try:
            tail = min(int(request.query.get("tail", "200")), MAX_LOG_TAIL)
        except ValueError as exc:
            raise ApiError(422, "bad_query", "tail must be a number") from exc
        logs_request = LogsRequest(role="all", stream="both", tail=tail, since=None, format="json")
        workspace, docker = locate(ctx), str(ctx.tier) == "container"
        if request.query.get("follow") in {"1", "true"}:
            return Reply(
                200,
                content_type="text/event-stream",
                headers=[("Cache-Control", "no-store")],
                stream=follow_logs(workspace, logs_request, docker),
            )
        answer = await asyncio.to_thread(read_logs, workspace, logs_request, docker=docker)
        return msgspec.to_builtins(answer)

    def _known(self, user_id: str) -> str:
        users = self._runner().users
        if (users and user_id not in users) or (not users and user_id != "default"):
            raise ApiError(404, "unknown_user", f"no user {user_id!r} in runner.toml")
        return user_id

    def _context(self, user_id: str) -> Any:
        from oxydra.runner._config import load_context

        try:
            return load_context(
                config=str(self.setup.runner_toml) if self.setup.runner_toml.exists() else None,
                user=user_id,
                insecure=self.setup.insecure_tier,
            )
        except RunnerError as exc:
            raise ApiError(422, "invalid_config", str(exc)) from exc


ROUTES: list[tuple[str, str, Route]] = [
    ("GET", "/auth/session", Configurator.auth_session),
    ("POST", "/auth/signin", Configurator.auth_signin),
    ("POST", "/auth/signout", Configurator.auth_signout),
    ("GET", "/meta", Configurator.meta),
    ("GET", "/meta/schema", Configurator.meta_schema),
    ("GET", "/catalog", Configurator.catalog),
    ("GET", "/catalog/status", Configurator.catalog_status),
    ("POST", "/catalog/refresh", Configurator.catalog_refresh),
    ("GET", "/onboarding/status", Configurator.onboarding_status),
    ("GET", "/config/runner", Configurator.get_runner),
    ("PATCH", "/config/runner", Configurator.patch_runner),
    ("POST", "/config/runner/validate", Configurator.validate_runner),
    ("GET", "/config/agent", Configurator.get_agent),
    ("PATCH", "/config/agent", Configurator.patch_agent),
    ("GET", "/config/agent/effective", Configurator.effective_agent),
    ("POST", "/config/agent/validate", Configurator.validate_agent),
    ("GET", "/config/users", Configurator.list_users),
    ("POST", "/config/users", Configurator.create_user),
    ("GET", "/config/users/*", Configurator.get_user),
    ("PATCH", "/config/users/*", Configurator.patch_user),
    ("DELETE", "/config/users/*", Configurator.delete_user),
    ("POST", "/config/users/*/validate", Configurator.validate_user),
    ("GET", "/status", Configurator.status_all),
    ("GET", "/status/*", Configurator.status_one),
    ("POST", "/control/*/start", Configurator.control),
    ("POST", "/control/*/stop", Configurator.control),
    ("POST", "/control/*/restart", Configurator.control),
    ("GET", "/logs/*", Configurator.logs),
]


def _match(method: str, path: str) -> tuple[Route, list[str]]:
    parts = path.strip("/").split("/")
    allowed = False
    for verb, pattern, route in ROUTES:
        want = pattern.strip("/").split("/")
        if len(want) != len(parts):
            continue
        params = [p for w, p in zip(want, parts, strict=True) if w == "*"]
        if all(w in ("*", p) for w, p in zip(want, parts, strict=True)):
            if verb == method:
                if pattern.startswith("/control/"):
                    params.append(parts[-1])
                return route, params
            allowed = True
    if allowed:
        raise ApiError(405, "method_not_allowed", f"{method} not allowed on {path}")
    raise ApiError(404, "not_found", f"no route /api/v1{path}")


def _json_body(request: HttpRequest) -> dict[str, Any]:
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        body = msgspec.json.decode(request.body or b"{}")
    except msgspec.DecodeError as exc:
        raise ApiError(400, "bad_json", f"request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "request body must be a JSON object")
    return body


def _flatten(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(tree, dict) and tree:
        out: list[tuple[str, Any]] = []
        for k, v in tree.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else k)
        return out
    return [(prefix, tree)]


def _source(sources: dict[str, str], dotted: str) -> str:
    path = dotted.split(".")
    while path:
        found = sources.get(".".join(path))
        if found:
            return found
        path.pop()
    return "default"
