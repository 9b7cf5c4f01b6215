"""Known secrets are redacted however a shell re-encodes them, and only their spelling is."""

from __future__ import annotations

import base64

import pytest

from oxydra.security import Scrubber
from tests.security.cases_reencoded import SECRET, reencodings

CASES = reencodings()


@pytest.mark.parametrize(("encoding", "text"), CASES, ids=[c[0] for c in CASES])
def test_a_re_encoded_known_secret_is_redacted(encoding: str, text: str) -> None:
    scrubber = Scrubber([SECRET], entropy=False)
    framed = f"before {text} after"
    out = scrubber.scrub(framed)
    assert "[REDACTED]" in out, out
    assert out.startswith("before ") and out.endswith(" after")
    assert SECRET[20:40] not in out and SECRET[20:40][::-1] not in out


@pytest.mark.parametrize(("encoding", "text"), CASES, ids=[c[0] for c in CASES])
def test_text_around_the_secret_survives(encoding: str, text: str) -> None:
    out = Scrubber([SECRET], entropy=False).scrub(f"line one\n{text}\nline three")
    assert out.startswith("line one\n") and out.endswith("\nline three")


def test_ordinary_text_with_separators_is_left_alone() -> None:
    text = "The quick brown fox\u200b jumps \x1b[1mover\x1b[0m the lazy dog.\n" * 50
    assert Scrubber([SECRET], entropy=False).scrub(text) == text


def test_a_base64_blob_holding_the_secret_loses_only_the_secret_part() -> None:
    blob = base64.b64encode(b"x" * 300 + SECRET.encode() + b"y" * 300).decode()
    out = Scrubber([SECRET], entropy=False).scrub(blob)
    assert "[REDACTED]" in out and out.startswith(blob[:300])
