"""The error tree: one root, retryable flags, and messages that say what to do."""

from __future__ import annotations

import pytest

from oxydra.core import errors


def test_every_error_derives_from_the_one_root() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert len(classes) > 20
    assert all(issubclass(c, errors.OxydraError) for c in classes)
    assert not any(c.__name__ in dir(__builtins__) for c in classes if c is not errors.OxydraError)


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (errors.RateLimitError, True),
        (errors.ServerError, True),
        (errors.AuthenticationError, False),
        (errors.BadRequestError, False),
        (errors.ContextTooLongError, False),
    ],
)
def test_http_errors_say_whether_a_retry_can_help(
    cls: type[errors.ProviderHTTPError], retryable: bool
) -> None:
    err = cls("nope", status=429, retry_after=1.5)
    assert err.retryable is retryable
    assert "HTTP 429" in str(err) and err.retry_after == 1.5


def test_transport_errors_are_retryable_and_protocol_errors_are_not() -> None:
    assert errors.ProviderTransportError("x").retryable
    assert not errors.ProviderProtocolError("x").retryable


def test_missing_extra_names_the_feature_and_the_extra() -> None:
    err = errors.MissingExtraError("vector search", "vectors", "usearch")
    assert "vector search" in str(err) and "oxydra[vectors]" in str(err)
    assert isinstance(err, errors.ConfigError)
