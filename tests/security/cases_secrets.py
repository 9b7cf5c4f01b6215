"""Secret shapes (the reference's 31 families) and false-positive controls (its 14).

Tokens are generated at run time from a seeded RNG (prefix + random characters of the
right alphabet), so no literal key is ever committed. Shared with bench/bench_tools.py.
Each `SecretCase` carries the text a tool might print and `secret`, a part of the token
that must not survive scrubbing.
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
from dataclasses import dataclass

ALNUM = string.ascii_letters + string.digits
UPPER32 = string.ascii_uppercase + "234567"
HEX = "0123456789abcdef"
B64URL = ALNUM + "-_"
B64 = ALNUM + "+/"
BECH32 = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"


@dataclass(frozen=True)
class SecretCase:
    """A text holding one secret of shape `shape` (1-31)."""

    shape: int
    name: str
    text: str
    secret: str


@dataclass(frozen=True)
class Control:
    """Text that must come out of the scrubber unchanged."""

    number: int
    name: str
    text: str


def _pick(rng: random.Random, alphabet: str, count: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(count))


def _b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _pem(rng: random.Random, label: str, lines: int = 6) -> tuple[str, str]:
    body = "\n".join(_pick(rng, B64, 64) for _ in range(lines))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----", body[:40]


def secret_cases(seed: int = 7) -> list[SecretCase]:
    """One or more cases per shape family, freshly generated."""
    rng = random.Random(seed)
    p = lambda alphabet, n: _pick(rng, alphabet, n)  # noqa: E731
    cases: list[SecretCase] = []

    def add(shape: int, name: str, template: str, token: str, secret: str | None = None) -> None:
        cases.append(SecretCase(shape, name, template.format(token), secret or token[-16:]))

    add(1, "aws-access-key-id", "found {} in the log", "AKIA" + p(UPPER32, 16))
    add(1, "aws-sts-key-id", "AccessKeyId: {}", "ASIA" + p(UPPER32, 16))
    add(2, "aws-secret-key", "aws_secret_access_key = {}", p(ALNUM + "/+", 40))
    for prefix in ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"):
        add(3, f"github-{prefix}", "remote uses token {} now", prefix + p(ALNUM, 36))
    add(4, "github-fine-grained", "PAT {}", "github_pat_" + p(ALNUM + "_", 82))
    add(5, "gitlab-pat", "glpat {} set", "glpat-" + p(ALNUM + "-_", 20))
    add(5, "gitlab-runner", "runner {} ok", "glrt-" + p(ALNUM + "-_", 24))
    add(6, "openai-project", "using {}", "sk-proj-" + p(B64URL, 74) + "T3BlbkFJ" + p(B64URL, 74))
    add(6, "openai-svcacct", "using {}", "sk-svcacct-" + p(B64URL, 58) + "T3BlbkFJ" + p(B64URL, 58))
    add(7, "openai-legacy", "key={}", "sk-" + p(ALNUM, 20) + "T3BlbkFJ" + p(ALNUM, 20))
    add(8, "anthropic-api", "x {} y", "sk-ant-api03-" + p(B64URL, 93) + "AA")
    add(9, "anthropic-admin", "admin {}", "sk-ant-admin01-" + p(B64URL, 93) + "AA")
    add(10, "google-api-key", "maps key {}", "AIza" + p(B64URL, 35))
    pem, body = _pem(rng, "PRIVATE KEY")
    sa = {"type": "service_account", "project_id": "demo", "private_key": pem + "\n"}
    cases.append(SecretCase(11, "gcp-service-account", json.dumps(sa, indent=1), body))
    add(
        12,
        "slack-bot",
        "bot {}",
        f"xoxb-{p(string.digits, 12)}-{p(string.digits, 12)}-{p(ALNUM, 24)}",
    )
    add(
        12,
        "slack-user",
        "user {}",
        f"xoxp-{p(string.digits, 11)}-{p(string.digits, 11)}-{p(string.digits, 12)}-{p(HEX, 32)}",
    )
    add(13, "slack-app", "app {}", f"xapp-1-A{p(UPPER32, 10)}-{p(string.digits, 13)}-{p(HEX, 64)}")
    hook = f"T{p(UPPER32, 10)}/B{p(UPPER32, 10)}/{p(ALNUM, 24)}"
    add(14, "slack-webhook", "POST https://hooks.slack.com/services/{}", hook)
    add(15, "telegram-bot", "TELEGRAM {}", f"{p(string.digits, 10)}:AA{p(B64URL, 33)}")
    discord = f"MT{p(B64URL, 22)}.{p(B64URL, 6)}.{p(B64URL, 38)}"
    add(16, "discord-bot", "discord {}", discord)
    add(17, "stripe-live", "charge with {}", "sk_live_" + p(ALNUM, 24))
    add(17, "stripe-restricted", "charge with {}", "rk_test_" + p(ALNUM, 24))
    add(18, "huggingface", "hf {}", "hf_" + p(string.ascii_letters, 34))
    add(18, "huggingface-org", "org {}", "api_org_" + p(string.ascii_letters, 34))
    add(
        19,
        "npm",
        "//registry.npmjs.org/:_authToken {}",
        "npm_" + p(string.ascii_lowercase + string.digits, 36),
    )
    add(20, "pypi", "upload {}", "pypi-AgEIcHlwaS5vcmc" + p(B64URL, 60))
    add(21, "sendgrid", "mail {}", f"SG.{p(B64URL, 22)}.{p(B64URL, 43)}")
    add(22, "twilio", "twilio {}", "SK" + p(HEX, 32))
    add(23, "digitalocean", "do {}", "dop_v1_" + p(HEX, 64))
    add(24, "vault", "vault {}", "hvs." + p(B64URL, 95))
    add(25, "azure-ad", "client secret {}", p(ALNUM, 3) + "8Q~" + p(ALNUM + "_~.-", 34))
    add(26, "perplexity", "pplx {}", "pplx-" + p(ALNUM, 48))
    add(26, "databricks", "dbx {}", "dapi" + p(HEX, 32))
    add(26, "linear", "linear {}", "lin_api_" + p(ALNUM, 40))
    add(26, "notion", "notion {}", "ntn_" + p(string.digits, 11) + p(ALNUM, 35))
    add(26, "sentry", "sentry {}", "sntryu_" + p(HEX, 64))
    header = _b64url({"alg": "HS256", "typ": "JWT"})
    claims = _b64url({"sub": p(ALNUM, 12), "iat": 1718000000, "name": p(ALNUM, 8)})
    jwt = f"{header}.{claims}.{p(B64URL, 43)}"
    add(27, "jwt", "cookie session={}", jwt, claims[-16:])
    jwt_b64 = base64.b64encode(jwt.encode()).decode()
    add(27, "jwt-base64", "blob {}", jwt_b64, jwt_b64[20:36])
    for label in (
        "RSA PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "EC PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
    ):
        block, body = _pem(rng, label)
        cases.append(SecretCase(28, f"pem-{label.split()[0].lower()}", f"cat id\n{block}\n", body))
    add(28, "age", "age key {}", "AGE-SECRET-KEY-1" + p(BECH32, 58))
    for scheme in ("postgres", "mysql", "mongodb", "redis", "amqp", "https"):
        password = p(ALNUM, 14)
        add(29, f"url-{scheme}", scheme + "://app:{}@db.example.com:5432/x", password)
    add(30, "bearer-header", "Authorization: Bearer {}", p(B64URL, 40))
    basic = base64.b64encode(f"user:{p(ALNUM, 16)}".encode()).decode()
    add(30, "basic-header", "authorization: Basic {}", basic)
    add(30, "x-api-key", "X-Api-Key: {}", p(ALNUM, 32))
    add(30, "curl-user", "curl -u admin:{} https://api.example.com", p(ALNUM, 14))
    add(30, "curl-header", 'curl -H "Authorization: Bearer {}" https://x.test', p(B64URL, 30))
    add(31, "env-password", "DB_PASSWORD={}", p(ALNUM, 14))
    add(31, "yaml-secret", "client_secret: {}", p(ALNUM, 20))
    add(31, "json-api-key", '{{"api_key": "{}"}}', p(ALNUM, 24))
    add(31, "ruby-token", "auth_token => {}", p(ALNUM, 18))
    add(31, "go-token", "apiKey := {}", p(ALNUM, 18))
    add(31, "docker-inspect", '"Env": ["PATH=/usr/bin", "SECRET_KEY={}"]', p(ALNUM, 30))
    add(31, "proc-environ", "HOME=/root\x00GITHUB_TOKEN={}\x00TERM=xterm", p(ALNUM, 30))
    add(31, "entropy-any-name", "MY_SERVICE_CRED_X={}", p(ALNUM, 40))
    return cases


def controls(seed: int = 11) -> list[Control]:
    """The false-positive controls, each of which must be kept verbatim."""
    rng = random.Random(seed)
    p = lambda alphabet, n: _pick(rng, alphabet, n)  # noqa: E731
    uuids = " ".join(str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(5))
    shas = "\n".join(f"commit {p(HEX, 40)}\nAuthor: A <a@example.com>" for _ in range(5))
    return [
        Control(
            1, "uuid", f"request ids: {uuids}\nrequest_id={uuid.UUID(int=rng.getrandbits(128))}"
        ),
        Control(2, "git-sha1", shas + f"\nGIT_COMMIT={p(HEX, 40)}"),
        Control(3, "short-sha", f"{p(HEX, 7)} fix tests; {p(HEX, 12)} merge"),
        Control(
            4,
            "sha256-digests",
            f"image@sha256:{p(HEX, 64)}\npip install x --hash=sha256:{p(HEX, 64)}\n"
            f'"digest": "{p(HEX, 64)}"',
        ),
        Control(
            5,
            "sri-hashes",
            f'<script integrity="sha384-{p(B64, 64)}"></script>\n'
            f'"integrity": "sha512-{p(B64, 86)}=="',
        ),
        Control(6, "base64-image", f"data:image/png;base64,iVBORw0KGgo{p(B64, 300)}="),
        Control(
            7,
            "paths-and-urls",
            "/usr/local/lib/python3.12/site-packages\n/Users/JohnDoe2/Library/Caches/pip3/wheels\n"
            "https://example.com/path/to/resource?x=1\n"
            "https://api.github.com/repos/foo/bar/commits?per_page=100&page=2\n"
            "see https://user@example.com/docs",
        ),
        Control(
            8,
            "identifiers",
            "ThisIsAVeryLongCamelCaseIdentifierName compute_the_rolling_summary_for_session_state\n"
            "handler = MyService2HandlerFactoryBuilder\nclass_name: HttpRequestRetryPolicy2",
        ),
        Control(
            9,
            "timestamps-ulids-ids",
            "2024-05-01T12:34:56.789Z 01ARZ3NDEKTSV4RRFFQ69G5FAV req_8f3a2b1c9d\n"
            "created_at: 2024-05-01T12:34:56+05:30",
        ),
        Control(
            10,
            "placeholders",
            "OPENAI_API_KEY=${OPENAI_API_KEY}\ntoken: {{ token }}\napi_key=<your-api-key>\n"
            'OPENAI_API_KEY=sk-...\npassword: xxxx\npassword=changeme\npassword=""\n'
            "DB_PASSWORD=$DB_PASSWORD\nsecret: None\npostgres://user:password@localhost/db",
        ),
        Control(
            11,
            "aws-doc-example",
            "AKIAIOSFODNN7EXAMPLE\naws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        Control(
            12,
            "public-keys-and-addresses",
            f"0x{p(HEX, 40)} bc1q{p(string.ascii_lowercase + string.digits, 38)}\n"
            f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{p(B64, 43)} user@host\n"
            f"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n{p(B64, 64)}\n{p(B64, 64)}\n"
            "-----END PGP PUBLIC KEY BLOCK-----\n"
            f"-----BEGIN CERTIFICATE-----\n{p(B64, 64)}\n-----END CERTIFICATE-----",
        ),
        Control(
            13,
            "numbers",
            "+1 415 555 0100, chat -1001234567890, ts 1718000000000, max_tokens=4096, "
            "prompt_tokens: 1234",
        ),
        Control(
            14,
            "already-redacted",
            "key sk-ant-\u2026[REDACTED] and password=[REDACTED] and Bearer [REDACTED]",
        ),
    ]
