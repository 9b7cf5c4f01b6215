"""The chat page on the gateway's port: static files, browser sign-in, sign-out.

Routes (everything else is 404; every answer carries `_http.SECURITY_HEADERS`):
  GET  /                        the page (never cached)
  GET  /static/<build>/<name>   an asset (cached forever: the URL changes with the content)
  POST /auth/signin             `Authorization: Bearer <gateway token>` -> session cookie and
                                `{user_id, csrf_token}`; rate-limited per peer
  GET  /auth/session            the signed-in user and CSRF token again (after a reload)
  POST /auth/signout            with `X-CSRF-Token`: ends the session
  GET  /api/trace/<turn id>     the turn's spans (signed in; from the observability store)
  GET  /api/schedules           the user's scheduled jobs with their latest runs
Chat itself is the gateway protocol on `/ws`, which `GatewayServer` lets a browser open with
the cookie from the page's own origin (`browser_user`).

Rules: a request whose `Host` is not one this server was bound for is refused (DNS
rebinding); a state change needs the page's own `Origin` and, once signed in, the CSRF token;
the token and cookie are never logged or put in a URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from oxydra.core.log import get_logger
from oxydra.web._assets import Assets
from oxydra.web._auth import COOKIE, BrowserSessions, SignInLimiter, csrf_matches
from oxydra.web._http import Reply, cookie_value, json_reply, text_reply

_log = get_logger(__name__)


class PageReads(Protocol):
    """What the page may read beyond the gateway protocol (wired by the composition root)."""

    async def trace(self, turn_id: str) -> list[dict[str, Any]] | None:
        """The spans of one turn, or None when none are stored."""
        ...

    async def schedules(self, user_id: str) -> list[dict[str, Any]]:
        """The user's schedules, each with its latest `runs`."""
        ...


class WebFront:
    """The `HttpFront` of the gateway (see `oxydra.gateway.HttpFront`)."""

    def __init__(
        self,
        tokens: Mapping[str, str],
        hosts: Iterable[str],
        *,
        secure: bool = False,
        sessions: BrowserSessions | None = None,
        limiter: SignInLimiter | None = None,
        assets: Assets | None = None,
        reads: PageReads | None = None,
    ) -> None:
        self.reads = reads
        self.hosts = {h.lower() for h in hosts}
        self.scheme = "https" if secure else "http"
        self.secure = secure
        self.sessions = sessions or BrowserSessions(tokens)
        self.limiter = limiter or SignInLimiter()
        self.assets = assets or Assets()
        self._routes: dict[tuple[str, str], Callable[[Request, str], Reply]] = {
            ("GET", "/"): self._page,
            ("POST", "/auth/signin"): self._sign_in,
            ("GET", "/auth/session"): self._session,
            ("POST", "/auth/signout"): self._sign_out,
        }

    def bind(self, host: str, port: int, origins: Iterable[str] = ()) -> None:
        """Answer to the names of the bound address (loopback names too for a loopback bind),
        and to the hosts of configured origins."""
        from oxydra.web._http import is_loopback, loopback_hosts

        name = f"[{host}]" if ":" in host else host
        hosts = {f"{name}:{port}"} | (loopback_hosts(port) if is_loopback(host) else set())
        for origin in origins:
            hosts.add(origin.partition("://")[2].rstrip("/").lower())
        self.hosts = {h.lower() for h in hosts}

    # ---- HttpFront ----------------------------------------------------------------

    async def respond(self, request: Request, peer: str) -> Response:
        """Answer one plain HTTP request."""
        reply = self.reply(request, peer)
        path = request.path.split("?", 1)[0]
        if reply.status == 404 and request.method == "GET" and path.startswith("/api/"):
            reply = await self._read(request, path)
        return _to_response(reply)

    async def _read(self, request: Request, path: str) -> Reply:
        """The JSON reads: signed in, same-origin or no fetch metadata, never cached."""
        if request.headers.get("Host", "").lower() not in self.hosts:
            return text_reply(421, "unknown host")
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in {"same-origin", "none"}:
            return text_reply(403, "cross-site request refused")
        session = self.sessions.lookup(cookie_value(request.headers.get("Cookie"), COOKIE))
        if session is None:
            return json_reply(401, {"error": "not signed in"})
        if self.reads is None:
            return json_reply(404, {"error": "not available"})
        if path.startswith("/api/trace/"):
            spans = await self.reads.trace(path.removeprefix("/api/trace/"))
            if spans is None:
                return json_reply(404, {"error": "no trace stored for that turn"})
            return json_reply(200, {"spans": spans})
        if path == "/api/schedules":
            return json_reply(200, {"schedules": await self.reads.schedules(session.user_id)})
        return text_reply(404, "not found")

    def browser_user(self, request: Request) -> str | None:
        """The signed-in user of a same-origin browser request, or None."""
        if not self.own_origin(request):
            return None
        session = self.sessions.lookup(cookie_value(request.headers.get("Cookie"), COOKIE))
        return session.user_id if session else None

    def own_origin(self, request: Request) -> bool:
        """Whether `Origin` is this page's origin, on a `Host` this server answers to."""
        host = request.headers.get("Host", "").lower()
        origin = request.headers.get("Origin", "")
        return host in self.hosts and origin.lower() == f"{self.scheme}://{host}"

    # ---- routing ------------------------------------------------------------------

    def reply(self, request: Request, peer: str) -> Reply:
        """The answer, before it is turned into the server library's type."""
        if request.headers.get("Host", "").lower() not in self.hosts:
            return text_reply(421, "unknown host")
        path = request.path.split("?", 1)[0]
        if request.method == "GET" and path.startswith("/static/"):
            asset = self.assets.find(path)
            if asset is None:
                return text_reply(404, "not found")
            cache = ("Cache-Control", "public, max-age=31536000, immutable")
            return Reply(200, asset.body, asset.content_type, [cache])
        handler = self._routes.get((request.method, path))
        if handler is None:
            known = any(p == path for _, p in self._routes)
            return text_reply(405 if known else 404, "method not allowed" if known else "not found")
        if request.method != "GET" and not self.own_origin(request):
            return text_reply(403, "cross-origin request refused")
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in {"same-origin", "none"}:
            return text_reply(403, "cross-site request refused")
        return handler(request, peer)

    def _page(self, request: Request, peer: str) -> Reply:
        body = self.assets.page("index.html")
        return Reply(200, body, "text/html; charset=utf-8", [("Cache-Control", "no-cache")])

    def _sign_in(self, request: Request, peer: str) -> Reply:
        wait = self.limiter.retry_after(peer)
        if wait:
            return json_reply(
                429, {"error": "too many failed sign-ins"}, [("Retry-After", str(wait))]
            )
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        user = self.sessions.user_for_token(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            self.limiter.failed(peer)
            _log.warning("web sign-in refused", extra={"peer": peer})
            return json_reply(401, {"error": "wrong token"})
        cookie, session = self.sessions.sign_in(user)
        _log.info("web sign-in", extra={"peer": peer, "user": user})
        return json_reply(
            200,
            {"user_id": user, "csrf_token": session.csrf_token},
            [("Set-Cookie", self._cookie(cookie, int(self.sessions.max_age_secs)))],
        )

    def _session(self, request: Request, peer: str) -> Reply:
        session = self.sessions.lookup(cookie_value(request.headers.get("Cookie"), COOKIE))
        if session is None:
            return json_reply(401, {"error": "not signed in"})
        return json_reply(200, {"user_id": session.user_id, "csrf_token": session.csrf_token})

    def _sign_out(self, request: Request, peer: str) -> Reply:
        cookie = cookie_value(request.headers.get("Cookie"), COOKIE)
        session = self.sessions.lookup(cookie)
        if session is None:
            return json_reply(401, {"error": "not signed in"})
        if not csrf_matches(session, request.headers.get("X-CSRF-Token")):
            return json_reply(403, {"error": "missing or wrong CSRF token"})
        self.sessions.sign_out(cookie)
        return json_reply(200, {"signed_out": True}, [("Set-Cookie", self._cookie("", 0))])

    def _cookie(self, value: str, max_age: int) -> str:
        secure = "; Secure" if self.secure else ""
        return f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"


def _to_response(reply: Reply) -> Response:
    # websockets answers one request per connection: say so, or clients reuse a dead socket
    headers = Headers([*reply.all_headers(), ("Connection", "close")])
    return Response(reply.status, reply.reason, headers, reply.body)
