"""HTTP answers of the web page and the configurator: a small value type and the headers
every answer carries.

The policy is the same for both servers: a strict Content-Security-Policy (scripts, styles
and connections only from the page's own origin, nothing inline, no frames, no remote
sources), no sniffing, no referrer, and nothing an API answers cached. `Host` is checked
against the names the server was bound for, so a DNS-rebinding page cannot reach it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import msgspec

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
NO_STORE = ("Cache-Control", "no-store")
_json = msgspec.json.Encoder()


@dataclass
class Reply:
    """An HTTP answer, before a server library writes it."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: AsyncIterator[bytes] | None = None  # a body sent as it comes (chunked), not `body`

    def all_headers(self) -> list[tuple[str, str]]:
        """Every header to send, security headers first."""
        length = [] if self.stream is not None else [("Content-Length", str(len(self.body)))]
        return [*SECURITY_HEADERS, ("Content-Type", self.content_type), *length, *self.headers]

    @property
    def reason(self) -> str:
        """The status line's phrase."""
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return ""


def json_reply(status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    """A JSON answer, never cached."""
    return Reply(status, _json.encode(data), "application/json", [NO_STORE, *(headers or [])])


def text_reply(status: int, text: str) -> Reply:
    """A short plain-text answer, never cached."""
    return Reply(status, (text + "\n").encode(), headers=[NO_STORE])


def loopback_hosts(port: int) -> set[str]:
    """The `Host` values a loopback server on `port` answers to."""
    return {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}


def is_loopback(host: str) -> bool:
    """Whether a bind address stays on this machine."""
    import ipaddress

    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def cookie_value(header: str | None, name: str) -> str | None:
    """The value of cookie `name` in a `Cookie` header, if present."""
    for part in (header or "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value
    return None
