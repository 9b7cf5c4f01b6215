"""Scrubbing: every secret shape redacted in every carrier, every control kept, streams too."""

from __future__ import annotations

import base64
import json
import random
import string
from urllib.parse import quote

import pytest

from oxydra.security import Scrubber, looks_random, shannon_entropy
from tests.security.cases_secrets import Control, SecretCase, controls, secret_cases

CASES = secret_cases()
CONTROLS = controls()
KNOWN = "p@ss/w0rd+Key=Value&more!xyz-" + "".join(
    random.Random(3).choices(string.ascii_letters, k=20)
)
FILLER = "lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 6


def test_every_one_of_the_31_shape_families_has_cases() -> None:
    assert {c.shape for c in CASES} == set(range(1, 32))


def test_the_14_controls_are_all_present() -> None:
    assert [c.number for c in CONTROLS] == list(range(1, 15))


class TestShapes:
    @pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
    def test_secret_shape_is_redacted(self, case: SecretCase) -> None:
        out = Scrubber().scrub(case.text)
        assert case.secret not in out
        assert "[REDACTED" in out

    @pytest.mark.parametrize("case", [c for c in CASES if c.shape != 31], ids=lambda c: c.name)
    def test_shape_is_caught_without_the_entropy_pass(self, case: SecretCase) -> None:
        assert case.secret not in Scrubber(entropy=False).scrub(case.text)

    @pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
    def test_scrubbing_is_idempotent(self, case: SecretCase) -> None:
        once = Scrubber().scrub(case.text)
        assert Scrubber().scrub(once) == once

    def test_vendor_prefix_is_kept_so_operators_know_which_key_leaked(self) -> None:
        anthropic = next(c for c in CASES if c.name == "anthropic-api")
        assert "sk-ant-\u2026[REDACTED]" in Scrubber().scrub(anthropic.text)

    @pytest.mark.parametrize("case", CASES[::5], ids=lambda c: c.name)
    def test_secret_inside_json_string_is_redacted(self, case: SecretCase) -> None:
        text = json.dumps({"stdout": case.text, "stderr": ""})
        assert case.secret not in Scrubber().scrub(text)


class TestControls:
    @pytest.mark.parametrize("control", CONTROLS, ids=lambda c: c.name)
    def test_control_is_kept_verbatim(self, control: Control) -> None:
        assert Scrubber().scrub(control.text) == control.text

    def test_known_secret_scrubber_still_keeps_controls(self) -> None:
        scrubber = Scrubber([KNOWN])
        assert all(scrubber.scrub(c.text) == c.text for c in CONTROLS)

    @pytest.mark.parametrize(
        ("value", "random_"),
        [
            ("3f1c2b7e-9a4d-4c1e-8b2a-0f6e5d4c3b2a", False),
            ("da39a3ee5e6b4b0d3255bfef95601890afd80709", False),
            ("ThisIsAVeryLongCamelCaseIdentifierName", False),
            ("01ARZ3NDEKTSV4RRFFQ69G5FAV", False),
            ("sha512-Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy", False),
            ("KvXmafechRSXMnHyDA7NKPn6WUWYf6b1dTUbQRi2", True),
            ("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0a11", True),
        ],
    )
    def test_entropy_judgement(self, value: str, random_: bool) -> None:
        assert looks_random(value) is random_

    def test_entropy_of_a_uniform_string_is_log2_of_its_alphabet(self) -> None:
        assert shannon_entropy("abcd" * 4) == pytest.approx(2.0)


class TestKnownValues:
    @pytest.mark.parametrize(
        ("carrier", "encode"),
        [
            ("plain", lambda s: f"value is {s}."),
            ("base64", lambda s: base64.b64encode(s.encode()).decode()),
            ("echo-base64", lambda s: base64.b64encode((s + "\n").encode()).decode()),
            ("basic-auth", lambda s: "Zz" + base64.b64encode(f"admin:{s}".encode()).decode()),
            ("urlsafe-base64", lambda s: base64.urlsafe_b64encode(s.encode()).decode()),
            ("url-encoded", lambda s: f"?key={quote(s, safe='')}&x=1"),
            ("json-escaped", lambda s: json.dumps({"k": s})),
            ("hex", lambda s: s.encode().hex()),
            ("traceback", lambda s: f'Traceback:\n  File "x.py"\nValueError: bad key {s!r}'),
        ],
    )
    def test_known_secret_is_redacted_in_every_carrier(self, carrier: str, encode: object) -> None:
        text = encode(KNOWN)  # type: ignore[operator]
        out = Scrubber([KNOWN], entropy=False).scrub(text)
        assert KNOWN not in out
        assert all(form not in out for form in _probe_forms(KNOWN)), out

    def test_values_of_secret_named_environment_variables_are_known(self) -> None:
        env = {"MY_SERVICE_TOKEN": "tok-1234567890abc", "HOME": "/home/someone1", "LANG": "C.UTF-8"}
        scrubber = Scrubber.from_environment(env, entropy=False)
        out = scrubber.scrub("tok-1234567890abc in /home/someone1")
        assert out == "[REDACTED] in /home/someone1"

    def test_short_known_values_are_ignored(self) -> None:
        assert Scrubber(["abc"]).scrub("abcdef abc") == "abcdef abc"


def _probe_forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [base64.b64encode(raw).decode()[4:24], raw.hex()[8:40], quote(secret, safe="")]


class TestStreaming:
    @pytest.mark.parametrize(
        "case", [next(c for c in CASES if c.shape == n) for n in range(1, 32)], ids=lambda c: c.name
    )
    def test_secret_split_across_two_chunks_at_every_point_is_caught(
        self, case: SecretCase
    ) -> None:
        scrubber = Scrubber()
        text = FILLER + case.text + "\n" + FILLER
        for split in range(len(FILLER) - 20, len(FILLER) + len(case.text) + 20):
            stream = scrubber.stream(window=128)
            out = stream.feed(text[:split]) + stream.feed(text[split:]) + stream.flush()
            assert case.secret not in out, split

    def test_stream_output_equals_whole_scrub_for_small_chunks(self) -> None:
        scrubber = Scrubber([KNOWN])
        text = "\n".join(c.text for c in CASES[:20]) + KNOWN + FILLER
        stream = scrubber.stream(window=256)
        pieces = [stream.feed(text[i : i + 37]) for i in range(0, len(text), 37)]
        out = "".join(pieces) + stream.flush()
        assert out == scrubber.scrub(text)

    def test_oversized_private_key_is_dropped_until_its_end_line(self) -> None:
        body = "\n".join("QUJD" * 16 for _ in range(200))
        text = (
            f"start\n-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\nafter"
        )
        stream = Scrubber().stream(window=64, max_hold=1024)
        out = "".join(stream.feed(text[i : i + 100]) for i in range(0, len(text), 100))
        out += stream.flush()
        assert "QUJD" not in out
        assert out.startswith("start\n") and out.endswith("after")
