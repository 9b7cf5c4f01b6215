"""Credential shapes the scrubber redacts (31 families; facts from gitleaks/detect-secrets).

Every rule's pattern has a `secret` group: the text before it in the match is kept (a vendor
prefix such as `ghp_`, a key name and separator), the group is replaced by the rule's
marker. `keywords` are lowercase substrings at least one of which must occur in the text
before the regex runs at all (gitleaks' prefilter); rules without keywords always run.
Redacted output never matches again, so scrubbing is idempotent.

Every rule runs in time linear in the text (the scrubber sees hostile tool output on the
event loop's behalf): quantifiers that meet are possessive, and the two shapes a single
regex can only express with an unbounded lazy scan per start are found by small linear
scanners instead: private-key blocks (BEGIN/END markers paired in one pass) and `curl -u`
(the option is matched, and `curl` must precede it on the same line).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

SHAPE_MARK = "\u2026[REDACTED]"
VALUE_MARK = "[REDACTED]"


class Hit(NamedTuple):
    """One match: its whole span (what a stream must not cut) and the secret's span."""

    start: int
    end: int
    secret_start: int
    secret_end: int


@dataclass(frozen=True)
class Rule:
    """One credential shape; `finder` scans instead of `pattern` where a regex is not linear.

    The regex is compiled on first use: most rules wait for their keyword, and compiling all
    of them cost every start ~4 ms, scrubbed or not.
    """

    name: str
    regex: str
    keywords: tuple[str, ...] = ()
    marker: str = SHAPE_MARK
    value_check: bool = False
    finder: Callable[[str], Iterator[Hit]] | None = None
    flags: int = 0

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        """The compiled regex."""
        return re.compile(self.regex, self.flags)

    def hits(self, text: str) -> Iterator[Hit]:
        """Non-overlapping matches in order."""
        if self.finder is not None:
            return self.finder(text)
        return (Hit(*m.span(), *m.span("secret")) for m in self.pattern.finditer(text))


def _r(
    name: str,
    regex: str,
    *keywords: str,
    flags: int = 0,
    marker: str = SHAPE_MARK,
    value_check: bool = False,
    finder: Callable[[str], Iterator[Hit]] | None = None,
) -> Rule:
    lowered = tuple(k.lower() for k in keywords)
    return Rule(name, regex, lowered, marker, value_check, finder, flags)


# A BEGIN or END line of a PEM private key. `[ A-Z0-9]*` backtracks only inside one marker
# (it cannot cross a `-`), so a scan over the whole text stays linear.
KEY_MARKER = re.compile(r"-----(?P<kind>BEGIN|END)[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----")


def private_key_blocks(text: str) -> Iterator[Hit]:
    """Each BEGIN up to the next END, or to the end of the text when none follows."""
    opened: int | None = None
    for marker in KEY_MARKER.finditer(text):
        if marker.group("kind") == "BEGIN":
            opened = marker.start() if opened is None else opened
        elif opened is not None:
            yield Hit(opened, marker.end(), opened, marker.end())
            opened = None
    if opened is not None:
        yield Hit(opened, len(text), opened, len(text))


# `curl ... -u user:secret` on one line. One alternation scanned once: newlines reset the
# line, the first `curl` word on a line opens it, an option match on an open line is a hit.
_CURL_SCAN = re.compile(
    r"(?P<nl>\n)|\b(?P<curl>curl)\b"
    r"|(?<=\s)(?:-u|--user)\s*+[\"']?+[^\s:\"']++:(?P<secret>[^\s\"']++)"
)


def curl_user(text: str) -> Iterator[Hit]:
    """`-u`/`--user` credentials on a line where `curl` came first."""
    curl_at: int | None = None
    for match in _CURL_SCAN.finditer(text):
        if match.group("nl") is not None:
            curl_at = None
        elif match.group("curl") is not None:
            curl_at = match.start() if curl_at is None else curl_at
        elif curl_at is not None:
            yield Hit(curl_at, match.end(), *match.span("secret"))
            if "\n" in match.group(0):
                curl_at = None


_L = r"(?<![A-Za-z0-9_-])"  # left edge of a token
_R = r"(?![A-Za-z0-9_-])"  # right edge of a token
_KEY_WORDS = (
    r"password|passwd|passphrase|secret|token|api[_.-]?key|apikey|access[_.-]?key|"
    r"private[_.-]?key|secret[_.-]?key|auth[_.-]?key|session[_.-]?key|signing[_.-]?key|"
    r"encryption[_.-]?key|master[_.-]?key|credentials?|client[_.-]?secret"
)
_VALUE = (
    r"\\\"(?:[^\"\\\n]|\\[^\"])*\\\""  # \"escaped quotes\" (JSON inside JSON)
    r"|\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'"  # "double" or 'single' quoted
    r"|(?:[^\s\"',;&\x00\\]|\\(?![\"']))+"  # bare value
)

SHAPE_RULES: tuple[Rule, ...] = (
    _r(
        "private-key",
        KEY_MARKER.pattern,
        "private key",
        marker="[REDACTED PRIVATE KEY]",
        finder=private_key_blocks,
    ),
    _r(
        "age-secret-key",
        r"(?P<secret>AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})",
        "age-",
    ),
    _r(
        "jwt",
        _L + r"(?P<secret>ey[A-Za-z0-9_-]{15,}\.ey[A-Za-z0-9_-]{15,}(?:\.[A-Za-z0-9_-]*)?)" + _R,
        "ey",
    ),
    _r("jwt-base64", _L + r"(?P<secret>ZXlK[A-Za-z0-9+/]{40,}={0,2})", "zxlk"),
    _r(
        "url-credentials",
        r"\b[a-z][a-z0-9+.-]{1,20}://[^\s:/?#@\"'<>]{0,128}:(?P<secret>[^\s/?#@\"'<>$]"
        r"[^\s/?#@\"'<>]{0,255})@",
        "://",
        flags=re.IGNORECASE,
        marker=VALUE_MARK,
        value_check=True,
    ),
    _r(
        "slack-webhook",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9+/]{43,56})",
        "hooks.slack.com",
    ),
    _r(
        "github-token",
        _L + r"gh[pousr]_(?P<secret>[A-Za-z0-9]{36})" + _R,
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
    ),
    _r("github-fine-grained", _L + r"github_pat_(?P<secret>\w{82})" + _R, "github_pat_"),
    _r(
        "gitlab-token",
        _L + r"gl(?:pat|dt|rt|cbt|ptt|ft|imt|oas|soat|agent)-(?P<secret>[\w.-]{20,300})",
        "gl",
    ),
    _r(
        "openai-key",
        _L + r"sk-(?:proj|svcacct|admin)-(?P<secret>[A-Za-z0-9_-]{40,})",
        "sk-proj-",
        "sk-svcacct-",
        "sk-admin-",
    ),
    _r(
        "openai-legacy",
        _L + r"sk-(?P<secret>[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})" + _R,
        "t3blbkfj",
    ),
    _r(
        "anthropic-key",
        _L + r"sk-ant-(?P<secret>(?:api|admin|oat|sid)\d{2}-[A-Za-z0-9_-]{80,})",
        "sk-ant-",
    ),
    _r("google-api-key", _L + r"AIza(?P<secret>[A-Za-z0-9_-]{35})" + _R, "aiza"),
    _r("slack-token", _L + r"xox[abeoprs]-(?P<secret>\d{8,13}-[A-Za-z0-9-]{8,250})", "xox"),
    _r(
        "slack-app-token", _L + r"xapp-(?P<secret>\d-[A-Z0-9]{6,}-\d{6,}-[A-Za-z0-9]{16,})", "xapp-"
    ),
    _r("telegram-bot-token", r"(?<![\d:])\d{5,16}:(?P<secret>A[A-Za-z0-9_-]{34})" + _R, ":a"),
    _r(
        "discord-bot-token",
        _L + r"(?P<secret>[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40})" + _R,
    ),
    _r(
        "stripe-key",
        _L + r"(?:sk|rk)_(?:test|live|prod)_(?P<secret>[A-Za-z0-9]{10,99})" + _R,
        "_test_",
        "_live_",
        "_prod_",
    ),
    _r(
        "huggingface-token",
        _L + r"(?:hf_|api_org_)(?P<secret>[A-Za-z]{34})" + _R,
        "hf_",
        "api_org_",
    ),
    _r("npm-token", _L + r"npm_(?P<secret>[A-Za-z0-9]{36})" + _R, "npm_"),
    _r(
        "pypi-token",
        _L + r"pypi-(?P<secret>AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,})",
        "pypi-ageichlwas5vcmc",
    ),
    _r("sendgrid-key", _L + r"SG\.(?P<secret>[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})" + _R, "sg."),
    _r("twilio-key", _L + r"SK(?P<secret>[0-9a-fA-F]{32})" + _R, "sk"),
    _r("digitalocean-token", _L + r"do[por]_v1_(?P<secret>[a-f0-9]{64})" + _R, "_v1_"),
    _r(
        "vault-token",
        _L + r"hv[sbr]\.(?P<secret>[A-Za-z0-9_-]{90,120})" + _R,
        "hvs.",
        "hvb.",
        "hvr.",
    ),
    _r(
        "azure-client-secret",
        r"(?<![A-Za-z0-9_~.-])(?P<secret>[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34})"
        r"(?![A-Za-z0-9_~.-])",
        "q~",
    ),
    _r("perplexity-key", _L + r"pplx-(?P<secret>[A-Za-z0-9]{48})" + _R, "pplx-"),
    _r("databricks-token", _L + r"dapi(?P<secret>[a-f0-9]{32}(?:-\d)?)" + _R, "dapi"),
    _r("linear-key", _L + r"lin_api_(?P<secret>[A-Za-z0-9]{40})" + _R, "lin_api_"),
    _r("notion-token", _L + r"ntn_(?P<secret>\d{11}[A-Za-z0-9]{35})" + _R, "ntn_"),
    _r("sentry-token", _L + r"sntry[us]_(?P<secret>[a-f0-9]{64}|eyJ[A-Za-z0-9_=-]{20,})", "sntry"),
    _r(
        "aws-access-key-id",
        _L
        + r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)(?P<secret>(?![A-Z2-7]{9}EXAMPLE)[A-Z2-7]{16})"
        + _R,
        "a3t",
        "akia",
        "asia",
        "abia",
        "acca",
    ),
    _r(
        "aws-secret-key",
        r"(?i:aws_?secret(?:_?access)?_?key)[\"']?\s*[:=]\s*[\"']?"
        r"(?P<secret>(?![A-Za-z0-9/+]*EXAMPLE)[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
        "aws",
        marker=VALUE_MARK,
    ),
    _r(
        "authorization-header",
        r"(?i:authorization)[\"']?+\s*+[:=]\s*+[\"']?+\s*+(?i:bearer|basic|token|bot|digest)\s++"
        r"(?P<secret>[A-Za-z0-9._~+/-]{8,}+=*+)",
        "authorization",
        marker=VALUE_MARK,
    ),
    _r(
        "bearer-token",
        r"\b(?i:bearer)\s+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)",
        "bearer",
        marker=VALUE_MARK,
    ),
    _r(
        "api-key-header",
        r"\b(?i:x-api-key|api-key|x-auth-token|x-goog-api-key|private-token|x-access-token)"
        r"\s*:\s*(?P<secret>[^\s\"',;]{8,})",
        "api-key",
        "auth-token",
        "private-token",
        "access-token",
        marker=VALUE_MARK,
    ),
    _r("curl-user", _CURL_SCAN.pattern, "curl", marker=VALUE_MARK, finder=curl_user),
)

# Family 31 and the entropy tier share one pass over every assignment-like pair:
# `KEY=value`, `key: value`, `"key": "value"`, `key := value`, `key => value`. The scrubber
# redacts the value when the key names a secret (unless the value is a placeholder), or
# when the value looks random (see `scrub.looks_random`). Keys start at a word boundary
# and are matched possessively (Python 3.11), so the scan stays linear.
ASSIGNMENT = re.compile(
    r"(?<![A-Za-z0-9_.-])(?P<key>\\?[\"']?[A-Za-z0-9_.-]{1,128}+\\?[\"']?)"
    r"\s*(?::=|=>|=|:)\s*(?P<secret>" + _VALUE + r")"
)
SECRET_KEY = re.compile(r"(?:" + _KEY_WORDS + r")\\?[\"']?$", re.IGNORECASE)
TOKEN_VALUE = re.compile(r"[A-Za-z0-9+/_=-]{20,512}")
