"""Browser sign-in: the gateway token exchanged for a short-lived cookie session.

Theory of operation:
1. A browser proves itself once, by sending the gateway token in an `Authorization` header
   of a `POST` (never in a URL, never stored by the page). It gets back an opaque session id
   in an HttpOnly, SameSite=Strict cookie, and a CSRF token in the response body that the
   page keeps in memory only.
2. Sessions live in this process's memory, keyed by a hash of the cookie value: a restart
   signs every browser out, and a leaked memory dump holds no usable cookie.
3. A session ends after `idle_secs` without use or `max_age_secs` after sign-in, whichever
   comes first; every use pushes the idle deadline, never the absolute one.
4. Failed sign-ins are counted per peer address in a sliding window; past the limit the
   peer is told when to come back and its guesses are not even checked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

COOKIE = "oxydra_session"


@dataclass
class BrowserSession:
    """One signed-in browser."""

    user_id: str
    csrf_token: str
    idle_deadline: float
    hard_deadline: float


class BrowserSessions:
    """Cookie sessions of the web page, checked in constant time against the gateway tokens."""

    def __init__(
        self,
        tokens: Mapping[str, str],
        *,
        idle_secs: float = 3600,
        max_age_secs: float = 8 * 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tokens = dict(tokens)  # token -> user id
        self.idle_secs, self.max_age_secs = idle_secs, max_age_secs
        self._clock = clock
        self._sessions: dict[bytes, BrowserSession] = {}

    def user_for_token(self, token: str) -> str | None:
        """The user a gateway token belongs to (every token compared, in constant time)."""
        found = None
        for known, user in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = user
        return found

    def sign_in(self, user_id: str) -> tuple[str, BrowserSession]:
        """A new session for `user_id`: the cookie value and the session."""
        self._sweep()
        cookie = secrets.token_urlsafe(32)
        now = self._clock()
        session = BrowserSession(
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(32),
            idle_deadline=now + self.idle_secs,
            hard_deadline=now + self.max_age_secs,
        )
        self._sessions[_key(cookie)] = session
        return cookie, session

    def lookup(self, cookie: str | None) -> BrowserSession | None:
        """The live session a cookie value names (its idle deadline pushed), or None."""
        if not cookie:
            return None
        key = _key(cookie)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self._clock()
        if now >= session.idle_deadline or now >= session.hard_deadline:
            del self._sessions[key]
            return None
        session.idle_deadline = now + self.idle_secs
        return session

    def sign_out(self, cookie: str | None) -> None:
        """Forget the session a cookie names."""
        if cookie:
            self._sessions.pop(_key(cookie), None)

    def _sweep(self) -> None:
        now = self._clock()
        for key, session in list(self._sessions.items()):
            if now >= session.idle_deadline or now >= session.hard_deadline:
                del self._sessions[key]

    def __len__(self) -> int:
        return len(self._sessions)


def csrf_matches(session: BrowserSession, presented: str | None) -> bool:
    """Whether a request's CSRF header is the session's token (constant time)."""
    return bool(presented) and hmac.compare_digest(
        session.csrf_token.encode(), (presented or "").encode()
    )


def _key(cookie: str) -> bytes:
    return hashlib.sha256(cookie.encode()).digest()


class SignInLimiter:
    """At most `limit` failed sign-ins per peer in any `window_secs`."""

    def __init__(
        self,
        limit: int = 5,
        window_secs: float = 60,
        *,
        max_peers: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window_secs, self.max_peers = limit, window_secs, max_peers
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, peer: str) -> int:
        """Seconds until `peer` may try again; 0 when it may now."""
        times = self._recent(peer)
        if len(times) < self.limit:
            return 0
        return max(1, int(times[0] + self.window_secs - self._clock()) + 1)

    def failed(self, peer: str) -> None:
        """Count one failed attempt of `peer`."""
        if peer not in self._failures and len(self._failures) >= self.max_peers:
            self._failures.pop(next(iter(self._failures)))  # the oldest peer
        self._recent(peer).append(self._clock())

    def _recent(self, peer: str) -> deque[float]:
        times = self._failures.setdefault(peer, deque())
        cutoff = self._clock() - self.window_secs
        while times and times[0] <= cutoff:
            times.popleft()
        return times
