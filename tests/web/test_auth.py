"""Browser sessions and the sign-in limiter, on an injected clock."""

from __future__ import annotations

from oxydra.web._auth import BrowserSessions, SignInLimiter, csrf_matches
from oxydra.web._http import cookie_value


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestBrowserSessions:
    def test_a_session_ends_after_idle_time_and_use_pushes_the_deadline(self) -> None:
        clock = Clock()
        sessions = BrowserSessions({"tok": "alice"}, idle_secs=60, max_age_secs=600, clock=clock)
        cookie, _ = sessions.sign_in("alice")
        clock.now += 50
        assert sessions.lookup(cookie) is not None
        clock.now += 50
        assert sessions.lookup(cookie) is not None, "the last use pushed the deadline"
        clock.now += 61
        assert sessions.lookup(cookie) is None

    def test_use_never_pushes_the_absolute_deadline(self) -> None:
        clock = Clock()
        sessions = BrowserSessions({}, idle_secs=60, max_age_secs=100, clock=clock)
        cookie, _ = sessions.sign_in("alice")
        for _ in range(3):
            clock.now += 40
            sessions.lookup(cookie)
        assert sessions.lookup(cookie) is None

    def test_tokens_and_csrf_compare_whole_values(self) -> None:
        sessions = BrowserSessions({"secret-token": "alice"})
        assert sessions.user_for_token("secret-token") == "alice"
        assert sessions.user_for_token("secret-toke") is None
        assert sessions.user_for_token("") is None
        _, session = sessions.sign_in("alice")
        assert csrf_matches(session, session.csrf_token)
        assert not csrf_matches(session, None) and not csrf_matches(session, "")
        assert not csrf_matches(session, session.csrf_token[:-1])

    def test_sign_out_and_unknown_cookies(self) -> None:
        sessions = BrowserSessions({})
        cookie, _ = sessions.sign_in("alice")
        assert sessions.lookup("forged") is None and sessions.lookup(None) is None
        sessions.sign_out(cookie)
        assert sessions.lookup(cookie) is None and len(sessions) == 0


class TestSignInLimiter:
    def test_failures_past_the_limit_wait_out_the_window(self) -> None:
        clock = Clock()
        limiter = SignInLimiter(3, 60, clock=clock)
        for _ in range(3):
            assert limiter.retry_after("p") == 0
            limiter.failed("p")
        assert limiter.retry_after("p") == 61
        assert limiter.retry_after("other") == 0, "per peer"
        clock.now += 60
        assert limiter.retry_after("p") == 0

    def test_the_table_of_peers_is_bounded(self) -> None:
        limiter = SignInLimiter(1, 60, max_peers=2, clock=Clock())
        for peer in ("a", "b", "c"):
            limiter.failed(peer)
        assert limiter.retry_after("a") == 0, "the oldest peer was forgotten"
        assert limiter.retry_after("c") > 0


def test_cookie_value_reads_one_cookie_among_many() -> None:
    header = "a=1; oxydra_session=xyz; b=2"
    assert cookie_value(header, "oxydra_session") == "xyz"
    assert cookie_value("xoxydra_session=1", "oxydra_session") is None
    assert cookie_value(None, "oxydra_session") is None
