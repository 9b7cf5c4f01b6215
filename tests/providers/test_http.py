"""URL joining, Retry-After parsing and status mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oxydra.core.errors import RateLimitError
from oxydra.providers import join_url, parse_retry_after
from oxydra.providers._http import status_error


class TestJoinUrl:
    @pytest.mark.parametrize(
        ("base", "path", "url"),
        [
            (
                "https://api.openai.com",
                "/v1/chat/completions",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "https://api.openai.com/",
                "/v1/chat/completions",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "https://api.openai.com/v1",
                "/v1/chat/completions",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "https://openrouter.ai/api/v1/",
                "/v1/chat/completions",
                "https://openrouter.ai/api/v1/chat/completions",
            ),
            (
                "https://openrouter.ai/api",
                "/v1/chat/completions",
                "https://openrouter.ai/api/v1/chat/completions",
            ),
            ("http://localhost:11434", "/v1/messages", "http://localhost:11434/v1/messages"),
            (
                "https://g.example/v1beta",
                "/v1beta/models/m:generateContent",
                "https://g.example/v1beta/models/m:generateContent",
            ),
            (
                "https://g.example/v1",
                "/v1beta/models/m:generateContent",
                "https://g.example/v1/models/m:generateContent",
            ),
            (
                "  https://x.example/proxy/v2 ",
                "/v1/responses",
                "https://x.example/proxy/v2/responses",
            ),
        ],
    )
    def test_version_segment_is_never_doubled(self, base: str, path: str, url: str) -> None:
        assert join_url(base, path) == url


class TestRetryAfter:
    NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("headers", "seconds"),
        [
            ({"retry-after": "7"}, 7.0),
            ({"retry-after": "1.5"}, 1.5),
            ({"retry-after": "-3"}, 0.0),
            ({"retry-after": "Wed, 01 Jan 2025 12:00:30 GMT"}, 30.0),
            ({"retry-after": "Wed, 01 Jan 2025 11:00:00 GMT"}, 0.0),
            ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
            ({"retry-after": "soon"}, None),
            ({"retry-after": "nan"}, None),
            ({"retry-after": "1e999"}, None),
            ({"retry-after-ms": "-inf"}, None),
            ({}, None),
        ],
    )
    def test_seconds_dates_and_milliseconds(
        self, headers: dict[str, str], seconds: float | None
    ) -> None:
        assert parse_retry_after(headers, self.NOW) == seconds

    def test_status_error_carries_retry_after_and_body(self) -> None:
        error = status_error("p", 429, {"retry-after": "2"}, b'{"error":{"message":"slow"}}')
        assert isinstance(error, RateLimitError)
        assert (error.retry_after, error.status, error.provider) == (2.0, 429, "p")
        assert "slow" in error.body
