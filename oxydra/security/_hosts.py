"""Host spelling rules: IPv4 literals as a resolver reads them, reserved names, labels.

`getaddrinfo` (glibc `inet_aton`) accepts `127.1`, `0`, `2130706433`, `0x7f.0.0.1`,
`0177.0.0.1` and `012.0.0.1` and turns them into real addresses, while
`ipaddress.ip_address` rejects them; a guard that treats "not an IP literal" as "a name" is
bypassed. So any host whose last label is numeric is parsed here exactly as `inet_aton`
would, and only the canonical dotted quad is accepted: other spellings are refused even when
they decode to a public address (OpenClaw's fail-closed policy; `8.8.2056` is 8.8.8.8).
"""

from __future__ import annotations

import ipaddress
import re

_HEX_LABEL = re.compile(r"0x[0-9a-f]*", re.IGNORECASE)
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")

# Names that always mean "this machine" or "the cloud's private plane".
RESERVED_NAMES: frozenset[str] = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "kubernetes.default",
        "kubernetes.default.svc",
    }
)
RESERVED_SUFFIXES: tuple[str, ...] = (
    ".localhost",
    ".local",
    ".internal",
    ".localdomain",
    ".home.arpa",
    ".svc",
    ".cluster.local",
)
# Metadata names stay refused even when the operator allowlists them.
METADATA_NAMES: frozenset[str] = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data"}
)


def looks_numeric(host: str) -> bool:
    """Whether a resolver would read `host` as an IPv4 literal (its last label is numeric)."""
    last = host.rsplit(".", 1)[-1]
    return bool(last) and (last.isdigit() or _HEX_LABEL.fullmatch(last) is not None)


def parse_inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """Decode `host` the way glibc `inet_aton` does; None when it would fail.

    Forms: `a.b.c.d`, `a.b.c` (c is 16 bits), `a.b` (b is 24 bits), `a` (32 bits); each part
    decimal, octal with a leading `0`, or hex with `0x`.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = [_parse_part(p) for p in parts]
    if any(v is None for v in values):
        return None
    nums = [v for v in values if v is not None]
    *head, last = nums
    if any(v > 255 for v in head) or last >= 1 << (8 * (5 - len(nums))):
        return None
    value = last
    for index, part in enumerate(head):
        value |= part << (24 - 8 * index)
    return ipaddress.IPv4Address(value)


def _parse_part(part: str) -> int | None:
    if not part:
        return None
    lowered = part.lower()
    try:
        if lowered.startswith("0x"):
            return int(lowered[2:], 16) if len(lowered) > 2 else 0
        if len(part) > 1 and part.startswith("0"):
            return int(part, 8)
        return int(part, 10) if part.isdigit() else None
    except ValueError:
        return None


def is_canonical_ipv4(host: str, address: ipaddress.IPv4Address) -> bool:
    """Whether `host` is the plain dotted-quad spelling of `address`."""
    return host == str(address)


def reserved_name(host: str) -> str | None:
    """The rule that reserves `host` (a normalized name), or None."""
    if host in RESERVED_NAMES:
        return f"'{host}' is a reserved local or metadata name"
    for suffix in RESERVED_SUFFIXES:
        if host.endswith(suffix):
            return f"names ending in '{suffix}' are local-network names"
    return None


def valid_hostname(host: str) -> bool:
    """Whether `host` is a syntactically valid ASCII DNS name (labels of letters, digits, -_)."""
    if not host or len(host) > 253:
        return False
    return all(_LABEL.fullmatch(label) for label in host.split("."))


def normalize_name(host: str) -> str:
    """Lowercase and strip one trailing dot, the forms the allowlist and deny-list compare."""
    host = host.lower()
    return host[:-1] if host.endswith(".") else host
