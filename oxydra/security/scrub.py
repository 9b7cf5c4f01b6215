"""Secret scrubbing of tool output, whole or streamed.

Order of the passes (each runs on the previous one's output):
1. Values we know: configured API keys and values of secret-named environment variables,
   also re-encoded: base64 at any alignment (wrapped or not), base32, hex in either case
   or as an `xxd`/`hexdump` dump, reversed, URL-encoded once or twice, JSON, `\\u` or `\\x`
   escaped, spaced out, folded, or interleaved with zero-width characters or ANSI codes
   (`_known.py`: normalised views mapped back to the original, linear time).
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

import functools
import itertools
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping

from oxydra.security._known import KnownSecretFinder, normalised_forms
from oxydra.security._secret_rules import (
    ASSIGNMENT,
    KEY_MARKER,
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
_MIN_LOOKAHEAD = 64 * 1024  # longer than any fixed-length shape (the longest is ~300 chars)
_MAX_NESTED_PAIRS = 3  # a pair inside a value inside a value: JSON in a JSON string, and one more


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
        self._known = KnownSecretFinder(values) if values else None
        longest = self._known.longest if self._known is not None else 0
        self.lookahead = max(_MIN_LOOKAHEAD, 4 * longest)  # spaced out or dumped: ~4x
        """Characters past a cut that must be scanned so no secret straddles it unseen."""
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
            text = _replace(text, self._known.spans(text), VALUE_MARK)
        lowered = text.lower()
        for rule in SHAPE_RULES:
            if not rule.keywords or any(k in lowered for k in rule.keywords):
                text = _redact(rule, text)
        return ASSIGNMENT.sub(functools.partial(self._assignment, depth=0), text)

    def _assignment(self, match: re.Match[str], *, depth: int) -> str:
        value = match.group("secret")
        inner = _unquote(value)
        if SECRET_KEY.search(match.group("key")):
            redact = not _is_placeholder(inner) and (len(inner) >= 4 or value != inner)
        else:
            redact = self._entropy and _random_token(inner)
        start = match.start("secret") - match.start()
        if redact:
            return match.group(0)[:start] + _mark(value, VALUE_MARK)
        # A value can hold more pairs (JSON inside a JSON string): look inside it too, to a
        # fixed depth: `a=a=a=...` would otherwise rescan the rest of the text per pair.
        if depth >= _MAX_NESTED_PAIRS or ("=" not in value and ":" not in value):
            return match.group(0)
        inner_pairs = functools.partial(self._assignment, depth=depth + 1)
        return match.group(0)[:start] + ASSIGNMENT.sub(inner_pairs, value)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where any rule matches in `text` (redacted or not), sorted by start."""
        found = [hit[:2] for rule in SHAPE_RULES for hit in rule.hits(text)]
        found += [m.span() for m in ASSIGNMENT.finditer(text)]
        if self._known is not None:
            found += self._known.spans(text)
        return sorted(found)

    def stream(self, *, window: int = 2048, max_hold: int = 1 << 18) -> StreamScrubber:
        """A per-stream scrubber that catches secrets split across chunks."""
        return StreamScrubber(self, window=window, max_hold=max_hold)


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
            self._in_key = _ends_inside_key(self._buffer)
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
        match = next((m for m in KEY_MARKER.finditer(self._buffer) if m["kind"] == "END"), None)
        if match is None:
            self._buffer = self._buffer[-64:]
            return False
        self._buffer = self._buffer[match.end() :]
        self._in_key = False
        return True


def _redact(rule: Rule, text: str) -> str:
    parts: list[str] = []
    done = 0
    for hit in rule.hits(text):
        secret = text[hit.secret_start : hit.secret_end]
        if rule.value_check and not _value_is_secret(secret):
            continue
        parts += (text[done : hit.secret_start], _mark(secret, rule.marker))
        done = hit.secret_end
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def _ends_inside_key(text: str) -> bool:
    """Whether `text` ends inside a private key block (BEGIN seen, no END yet)."""
    inside = False
    for marker in KEY_MARKER.finditer(text):
        inside = marker["kind"] == "BEGIN"
    return inside


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


def _replace(text: str, spans: list[tuple[int, int]], marker: str) -> str:
    parts: list[str] = []
    done = 0
    for start, end in spans:
        parts += (text[done:start], marker)
        done = end
    parts.append(text[done:])
    return "".join(parts)


def encoded_forms(value: str) -> set[str]:
    """The spellings of a secret that tool output may contain (see `_known.py`)."""
    return normalised_forms(value)
