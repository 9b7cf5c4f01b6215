"""Secret scrubbing of tool output, whole or streamed.

Order of the passes (each runs on the previous one's output):
1. Exact values we know: configured API keys, values of secret-named environment
   variables, and their base64 (any byte alignment, with or without a trailing newline as
   `echo $KEY | base64` adds), URL-encoded, JSON-escaped and hex forms.
2. Credential shapes (`_secret_rules.SHAPE_RULES`): vendor token formats, private keys,
   JWTs, credentials in URLs, auth headers, `curl -u`.
3. `KEY=value` pairs whose key names a secret (password, token, api_key, ...), unless the
   value is a placeholder (`${VAR}`, `<your-key>`, `changeme`, `xxxx`, `sk-...`).
4. Entropy: a long token-charset value assigned to any name (`X=...`, `"x": "..."`) is
   redacted when it looks random: hex of a non-digest length with >= 3.0 bits/char, or
   mixed-case alphanumerics with high entropy and frequent class changes. Bare tokens are
   never judged on entropy alone: UUIDs, git hashes, SHA-256 digests, SRI hashes, base64
   images, paths and URLs stay (see the false-positive controls in the tests).

The streaming scrubber holds back a tail window so a secret split across chunks is seen
whole; its cut point never falls inside a match.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

from oxydra.security._secret_rules import (
    ASSIGNMENT,
    SECRET_KEY,
    SHAPE_RULES,
    TOKEN_VALUE,
    VALUE_MARK,
    Rule,
)

SECRET_ENV_NAME = re.compile(
    r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|AUTH|PRIVATE|_PAT$)", re.IGNORECASE
)
_PLACEHOLDER_WORDS = frozenset(
    {
        "true", "false", "null", "none", "nil", "undefined", "changeme", "change_me", "password",
        "secret", "token", "example", "redacted", "hidden", "masked", "required", "optional",
        "string", "your_api_key", "your-api-key", "placeholder", "dummy", "test", "todo",
    }
)  # fmt: skip
_PLACEHOLDER_SHAPES = re.compile(
    r"^(?:\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\{\{.*\}\}|<[^>]*>|%[A-Za-z_]+%|[xX*.\u2022#-]+)$"
)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DIGEST_HEX_LENGTHS = frozenset({32, 40, 56, 64, 96, 128})


class Scrubber:
    """Redacts secrets from text; immutable and safe to share between tasks.

    Args:
        known_secrets: exact values to redact wherever they appear, in any encoding.
        entropy: whether the entropy pass (4) runs.
        min_known_length: shorter known values are ignored (they would redact common words).
    """

    def __init__(
        self, known_secrets: Iterable[str] = (), *, entropy: bool = True, min_known_length: int = 8
    ) -> None:
        values = {s.strip() for s in known_secrets if len(s.strip()) >= min_known_length}
        self._known_values = frozenset(values)
        self._known = _known_pattern(values)
        self._entropy = entropy
        self._min_known = min_known_length

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        extra: Iterable[str] = (),
        entropy: bool = True,
    ) -> Scrubber:
        """A scrubber that knows the values of every secret-named environment variable."""
        env = os.environ if environ is None else environ
        values = [v for k, v in env.items() if SECRET_ENV_NAME.search(k)]
        return cls([*values, *extra], entropy=entropy)

    def scrub(self, text: str) -> str:
        """`text` with every secret replaced by a marker (idempotent)."""
        if self._known is not None:
            text = self._known.sub(VALUE_MARK, text)
        lowered = text.lower()
        for rule in SHAPE_RULES:
            if not rule.keywords or any(k in lowered for k in rule.keywords):
                text = rule.pattern.sub(_replacer(rule), text)
        return ASSIGNMENT.sub(self._assignment, text)

    def _assignment(self, match: re.Match[str]) -> str:
        value = match.group("secret")
        inner = _unquote(value)
        if SECRET_KEY.search(match.group("key")):
            redact = not _is_placeholder(inner) and (len(inner) >= 4 or value != inner)
        else:
            redact = self._entropy and _random_token(inner)
        start = match.start("secret") - match.start()
        if redact:
            return match.group(0)[:start] + _mark(value, VALUE_MARK)
        # A value can hold more pairs (JSON inside a JSON string): look inside it too.
        if "=" not in value and ":" not in value:
            return match.group(0)
        return match.group(0)[:start] + ASSIGNMENT.sub(self._assignment, value)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where any rule matches in `text` (redacted or not), sorted by start."""
        patterns = [rule.pattern for rule in SHAPE_RULES] + [ASSIGNMENT]
        if self._known is not None:
            patterns.append(self._known)
        found = [m.span() for p in patterns for m in p.finditer(text)]
        return sorted(found)

    def stream(self, *, window: int = 2048, max_hold: int = 1 << 18) -> StreamScrubber:
        """A per-stream scrubber that catches secrets split across chunks."""
        return StreamScrubber(self, window=window, max_hold=max_hold)


_KEY_END = re.compile(r"-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----")
_KEY_BEGIN = re.compile(
    r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:(?!-----END).)*\Z", re.S
)


class StreamScrubber:
    """Scrubs a stream chunk by chunk, holding back `window` chars (and any open match).

    Call `feed` for each chunk and `flush` at the end; the concatenated output equals a
    whole-text scrub as far as secrets are concerned. A private key block longer than
    `max_hold` is redacted up to that point and the rest dropped until its END line.
    """

    def __init__(self, scrubber: Scrubber, *, window: int, max_hold: int) -> None:
        self._scrubber = scrubber
        self._window = window
        self._max_hold = max_hold
        self._buffer = ""
        self._in_key = False

    def feed(self, chunk: str) -> str:
        """Add a chunk; returns the scrubbed text that is now safe to emit."""
        self._buffer += chunk
        if self._in_key and not self._skip_key():
            return ""
        cut = self._cut_point()
        if cut > 0:
            head, self._buffer = self._buffer[:cut], self._buffer[cut:]
            return self._scrubber.scrub(head)
        if len(self._buffer) > self._max_hold:
            self._in_key = _KEY_BEGIN.search(self._buffer) is not None
            return self.flush()
        return ""

    def flush(self) -> str:
        """Scrub and return everything still held."""
        text, self._buffer = self._buffer, ""
        return self._scrubber.scrub(text)

    def _cut_point(self) -> int:
        cut = len(self._buffer) - self._window
        if cut <= 0:
            return 0
        for start, end in reversed(self._scrubber.spans(self._buffer)):
            if start < cut < end:
                cut = start
        return cut

    def _skip_key(self) -> bool:
        match = _KEY_END.search(self._buffer)
        if match is None:
            self._buffer = self._buffer[-64:]
            return False
        self._buffer = self._buffer[match.end() :]
        self._in_key = False
        return True


def _replacer(rule: Rule):  # type: ignore[no-untyped-def]
    def replace(match: re.Match[str]) -> str:
        secret = match.group("secret")
        if rule.value_check and not _value_is_secret(secret):
            return match.group(0)
        start, end = match.start("secret") - match.start(), match.end("secret") - match.start()
        whole = match.group(0)
        return whole[:start] + _mark(secret, rule.marker) + whole[end:]

    return replace


def _mark(secret: str, marker: str) -> str:
    if len(secret) >= 4 and secret.startswith('\\"') and secret.endswith('\\"'):
        return '\\"' + marker + '\\"'
    if len(secret) >= 2 and secret[0] in "\"'" and secret[-1] == secret[0]:
        return secret[0] + marker + secret[0]
    return marker


def _value_is_secret(value: str) -> bool:
    return not _is_placeholder(_unquote(value))


def _random_token(value: str) -> bool:
    return TOKEN_VALUE.fullmatch(value) is not None and looks_random(value)


def _unquote(value: str) -> str:
    if len(value) >= 4 and value.startswith('\\"') and value.endswith('\\"'):
        return value[2:-2]
    if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
        return value[1:-1]
    return value


def _is_placeholder(value: str) -> bool:
    stripped = value.strip()
    lowered = stripped.lower()
    if not stripped or lowered in _PLACEHOLDER_WORDS or _PLACEHOLDER_SHAPES.match(stripped):
        return True
    if "[REDACTED" in stripped or "..." in stripped or "\u2026" in stripped:
        return True
    if "EXAMPLE" in stripped or lowered.startswith(("your", "<", "$")):
        return True
    if stripped.endswith((")", "]")) or len(set(lowered)) <= 2:
        return True
    return stripped.startswith(("/", "./", "~/")) and "/" in stripped[1:]


def shannon_entropy(text: str) -> float:
    """Bits per character of `text`'s own character distribution."""
    if not text:
        return 0.0
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in Counter(text).values())


def looks_random(value: str) -> bool:
    """Whether a >= 20-char token-charset value looks like a generated secret (pass 4)."""
    if len(value) < 20 or _UUID.match(value) or value.isdigit():
        return False
    if re.match(r"^sha\d{1,3}-", value):
        return False
    if all(c in "0123456789abcdefABCDEF" for c in value):
        return len(value) not in _DIGEST_HEX_LENGTHS and shannon_entropy(value) >= 3.0
    if not (any(c.isupper() for c in value) and any(c.islower() for c in value)):
        return False
    if not any(c.isdigit() for c in value):
        return False
    threshold = min(4.5, 0.9 * math.log2(len(value)))
    return shannon_entropy(value) >= threshold and _class_switch_rate(value) >= 0.4


def _class_switch_rate(value: str) -> float:
    classes = [
        "u" if c.isupper() else "l" if c.islower() else "d" if c.isdigit() else "o" for c in value
    ]
    switches = sum(1 for a, b in itertools.pairwise(classes) if a != b)
    return switches / (len(value) - 1)


def _known_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    forms: set[str] = set()
    for value in values:
        forms.update(f for f in encoded_forms(value) if len(f) >= 8)
    if not forms:
        return None
    ordered = sorted(forms, key=len, reverse=True)
    return re.compile("|".join(re.escape(f) for f in ordered))


def encoded_forms(value: str) -> set[str]:
    """The spellings of a secret that tool output may contain."""
    raw = value.encode("utf-8")
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    forms.add(binascii.hexlify(raw).decode())
    for data in (raw, raw + b"\n"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(data).decode()
            forms.update({encoded, encoded.rstrip("=")})
    forms.update(_aligned_base64_cores(raw))
    return forms


def _aligned_base64_cores(raw: bytes) -> set[str]:
    """Base64 of `raw` as it appears inside a longer base64 string, at each byte offset."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        start = -(-8 * offset // 6)
        end = (8 * (offset + len(raw))) // 6
        core = encoded[start:end]
        if len(core) >= 16:
            cores.add(core)
    return cores
