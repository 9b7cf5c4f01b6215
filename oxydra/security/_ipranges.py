"""Our own table of address ranges an outbound fetch must never reach.

Why a table and not `ipaddress` flags: on CPython 3.11 (before the CVE-2024-4032 fix)
`::ffff:127.0.0.1` is not `is_loopback`, `100.64.0.0/10` is not `is_private`, and
`::127.0.0.1`, `64:ff9b::127.0.0.1`, `2002:7f00:1::`, `fec0::1`, `224.0.0.1` and
`192.0.0.192` all report `is_global`. The flags also changed between patch releases. So the
verdict comes from the explicit CIDR list below (ssrf_filter / OpenClaw ranges), and IPv6
forms that carry an IPv4 address (mapped, compatible, SIIT, NAT64, 6to4, Teredo, ISATAP) are
unwrapped so the reason names the embedded address.

Rules:
1. Metadata endpoints are their own class (`metadata`); the egress allowlist never opens them.
2. Every IPv6 address outside global unicast `2000::/3` is refused (`reserved`), then the
   blocked ranges inside `2000::/3` are checked.
3. A public IPv4 address wrapped in an IPv6 transition form is still refused: the wrapper
   itself is the reason (fail closed; nothing legitimate needs it for a web fetch).
"""

from __future__ import annotations

import ipaddress
from typing import Literal

import msgspec

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressClass = Literal[
    "public",
    "metadata",
    "loopback",
    "private",
    "link_local",
    "cgnat",
    "unspecified",
    "multicast",
    "reserved",
    "broadcast",
    "documentation",
    "benchmarking",
    "ipv4_embedded",
    "site_local",
    "unique_local",
]


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """Classification of one address: its class and a sentence saying why."""

    address: str
    kind: AddressClass
    reason: str

    @property
    def public(self) -> bool:
        """Whether a fetch may connect to this address without an allowlist entry."""
        return self.kind == "public"


_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Cloud instance metadata services (AWS/GCP/Azure/DO/OpenStack/Hetzner, AWS ECS task
# credentials, Alibaba, Oracle legacy, AWS IPv6 IMDS).
METADATA_ADDRESSES: frozenset[str] = frozenset(
    {
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "100.100.100.200",
        "192.0.0.192",
        "fd00:ec2::254",
        "fd00:ec2::23",
    }
)

_IPV4_TABLE: tuple[tuple[_V4, AddressClass, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified", "0.0.0.0/8 'this network' (Linux routes it locally)"),
    (_V4("10.0.0.0/8"), "private", "10.0.0.0/8 private (RFC 1918)"),
    (_V4("100.64.0.0/10"), "cgnat", "100.64.0.0/10 shared address space (CGNAT, RFC 6598)"),
    (_V4("127.0.0.0/8"), "loopback", "127.0.0.0/8 loopback"),
    (_V4("169.254.0.0/16"), "link_local", "169.254.0.0/16 link-local"),
    (_V4("172.16.0.0/12"), "private", "172.16.0.0/12 private (RFC 1918)"),
    (_V4("192.0.0.0/24"), "reserved", "192.0.0.0/24 IETF protocol assignments"),
    (_V4("192.0.2.0/24"), "documentation", "192.0.2.0/24 TEST-NET-1"),
    (_V4("192.88.99.0/24"), "reserved", "192.88.99.0/24 6to4 relay anycast"),
    (_V4("192.168.0.0/16"), "private", "192.168.0.0/16 private (RFC 1918)"),
    (_V4("198.18.0.0/15"), "benchmarking", "198.18.0.0/15 benchmarking (RFC 2544)"),
    (_V4("198.51.100.0/24"), "documentation", "198.51.100.0/24 TEST-NET-2"),
    (_V4("203.0.113.0/24"), "documentation", "203.0.113.0/24 TEST-NET-3"),
    (_V4("224.0.0.0/4"), "multicast", "224.0.0.0/4 multicast"),
    (_V4("255.255.255.255/32"), "broadcast", "255.255.255.255 limited broadcast"),
    (_V4("240.0.0.0/4"), "reserved", "240.0.0.0/4 reserved (class E)"),
)

_IPV6_TABLE: tuple[tuple[_V6, AddressClass, str], ...] = (
    (_V6("::/128"), "unspecified", ":: unspecified"),
    (_V6("::1/128"), "loopback", "::1 loopback"),
    (_V6("2001::/32"), "ipv4_embedded", "2001::/32 Teredo tunnel"),
    (_V6("2001:2::/48"), "benchmarking", "2001:2::/48 benchmarking"),
    (_V6("2001:10::/28"), "reserved", "2001:10::/28 ORCHID"),
    (_V6("2001:20::/28"), "reserved", "2001:20::/28 ORCHIDv2"),
    (_V6("2001:db8::/32"), "documentation", "2001:db8::/32 documentation"),
    (_V6("2002::/16"), "ipv4_embedded", "2002::/16 6to4 tunnel"),
    (_V6("3fff::/20"), "documentation", "3fff::/20 documentation (RFC 9637)"),
    (_V6("fc00::/7"), "unique_local", "fc00::/7 unique local (ULA)"),
    (_V6("fe80::/10"), "link_local", "fe80::/10 link-local"),
    (_V6("fec0::/10"), "site_local", "fec0::/10 site-local (deprecated)"),
    (_V6("ff00::/8"), "multicast", "ff00::/8 multicast"),
)

_GLOBAL_UNICAST = _V6("2000::/3")

# IPv6 prefixes whose low 32 bits carry an IPv4 address.
_EMBEDDING_PREFIXES: tuple[tuple[_V6, str], ...] = (
    (_V6("::ffff:0:0/96"), "IPv4-mapped"),
    (_V6("::ffff:0:0:0/96"), "IPv4-translated (SIIT)"),
    (_V6("64:ff9b::/96"), "NAT64"),
    (_V6("64:ff9b:1::/48"), "local-use NAT64"),
    (_V6("::/96"), "IPv4-compatible"),
)


def classify(address: IPAddress) -> Verdict:
    """Classify one address against the table; see the module rules."""
    text = address.compressed
    if text in METADATA_ADDRESSES:
        return Verdict(address=text, kind="metadata", reason=f"{text} is a cloud metadata endpoint")
    if isinstance(address, ipaddress.IPv4Address):
        return _classify_v4(address)
    return _classify_v6(address)


def _classify_v4(address: ipaddress.IPv4Address) -> Verdict:
    for network, kind, why in _IPV4_TABLE:
        if address in network:
            return Verdict(address=str(address), kind=kind, reason=f"{address} is in {why}")
    return Verdict(address=str(address), kind="public", reason=f"{address} is public")


def _classify_v6(address: ipaddress.IPv6Address) -> Verdict:
    text = address.compressed
    embedded = embedded_ipv4(address)
    if embedded is not None:
        form, inner = embedded
        inner_verdict = classify(inner)
        kind: AddressClass = "metadata" if inner_verdict.kind == "metadata" else "ipv4_embedded"
        reason = f"{text} ({form}) wraps {inner}: {inner_verdict.reason}"
        return Verdict(address=text, kind=kind, reason=reason)
    for network, kind, why in _IPV6_TABLE:
        if address in network:
            return Verdict(address=text, kind=kind, reason=f"{text} is in {why}")
    if address not in _GLOBAL_UNICAST:
        reason = f"{text} is outside global unicast 2000::/3 (reserved)"
        return Verdict(address=text, kind="reserved", reason=reason)
    return Verdict(address=text, kind="public", reason=f"{text} is public")


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 transition form carries, with the form's name.

    Covers mapped, SIIT, NAT64 (well-known and local-use), compatible, 6to4 (bits 16-48),
    Teredo (client address = inverted low 32 bits) and ISATAP (`...:0:5efe:a.b.c.d`).
    `::` and `::1` are not treated as compatible forms: they are classified directly.
    """
    value = int(address)
    if value <= 1:
        return None
    low32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    for prefix, form in _EMBEDDING_PREFIXES:
        if address in prefix:
            return form, low32
    if address in _V6("2002::/16"):
        return "6to4", ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF)
    if address in _V6("2001::/32"):
        return "Teredo", ipaddress.IPv4Address(~value & 0xFFFFFFFF)
    if (value >> 32) & 0xFDFFFFFF == 0x00005EFE:
        return "ISATAP", low32
    return None
