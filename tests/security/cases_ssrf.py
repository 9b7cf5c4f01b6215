"""SSRF inputs: the reference's 64 cases (split where a row holds several URLs) and more.

Shared by tests/security/test_ssrf.py and bench/bench_tools.py. `dns` is what the stub
resolver answers for a name (absent: the name does not resolve). Rows whose host is a
literal need no DNS; the guard must decide them without asking the resolver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Expect = Literal["block", "allow"]
PUBLIC = "93.184.216.34"


@dataclass(frozen=True)
class SsrfCase:
    """One input URL, the stub DNS answers and the verdict the guard must return."""

    id: str
    url: str
    expect: Expect
    dns: dict[str, list[str]] = field(default_factory=dict)
    allowlist: tuple[str, ...] = ()


def _b(id_: str, url: str, **dns: list[str]) -> SsrfCase:
    return SsrfCase(id_, url, "block", {k.replace("_", "."): v for k, v in dns.items()})


def _a(id_: str, url: str, dns: dict[str, list[str]] | None = None) -> SsrfCase:
    return SsrfCase(id_, url, "allow", dns or {})


REFERENCE_CASES: tuple[SsrfCase, ...] = (
    _b("01-file-scheme", "file:///etc/passwd"),
    _b("02-gopher", "gopher://127.0.0.1:6379/_INFO"),
    _b("03-dict", "dict://127.0.0.1:11211/stats"),
    _b("04-ftp", "ftp://example.com/x"),
    _b("05-jar", "jar:http://127.0.0.1!/"),
    _a("06-mixed-case-public", "HTTPS://Example.COM/", {"example.com": [PUBLIC]}),
    _b("07-loopback", "http://127.0.0.1/"),
    SsrfCase("08-localhost", "http://localhost/", "block", {"localhost": ["127.0.0.1"]}),
    SsrfCase("09-localhost-upper-dot", "http://LOCALHOST./", "block", {"localhost": ["127.0.0.1"]}),
    _b("10-loopback-127-127", "http://127.127.127.127/"),
    _b("11-short-form", "http://127.1/"),
    _b("12-zero", "http://0/"),
    _b("13-any-address", "http://0.0.0.0:8080/"),
    _b("14-dword", "http://2130706433/"),
    _b("15-hex-dword", "http://0x7f000001/"),
    _b("16-hex-octet", "http://0x7f.0.0.1/"),
    _b("17-octal-octet", "http://0177.0.0.1/"),
    _b("18-octal-dword", "http://017700000001/"),
    _b("19-zero-padding", "http://127.000.000.001/"),
    _b("20-percent-encoded-host", "http://%31%32%37.0.0.1/"),
    _b("21-ideographic-dots", "http://127\u30020\u30020\u30021/"),
    _b("22-enclosed-alnum", "http://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3/"),
    _b("23-v6-loopback", "http://[::1]/"),
    _b("24-v6-loopback-long", "http://[0:0:0:0:0:0:0:1]/"),
    _b("25-v6-unspecified", "http://[::]/"),
    _b("26-v4-mapped", "http://[::ffff:127.0.0.1]/"),
    _b("27-v4-mapped-hex", "http://[::ffff:7f00:1]/"),
    _b("28-v4-compatible", "http://[::127.0.0.1]/"),
    _b("29-nat64", "http://[64:ff9b::127.0.0.1]/"),
    _b("30-nat64-local", "http://[64:ff9b:1::10.0.0.1]/"),
    _b("31-6to4", "http://[2002:7f00:1::]/"),
    _b("32-teredo", "http://[2001:0:4136:e378:8000:63bf:3f57:fdf2]/"),
    _b("33-isatap", "http://[2001:db8:1234::5efe:127.0.0.1]/"),
    _b("34-link-local-zone", "http://[fe80::1%25eth0]/"),
    _b("35-ula", "http://[fd00::1]/"),
    _b("36-site-local", "http://[fec0::1]/"),
    _b("37-v6-multicast", "http://[ff02::1]/"),
    _b("38-rfc1918-10", "http://10.0.0.1/"),
    _b("39a-rfc1918-172-top", "http://172.31.255.255/"),
    _a("39b-just-outside-172-16", "http://172.32.0.1/"),
    _b("40-rfc1918-192-168", "http://192.168.1.1/"),
    _b("41-octal-to-10", "http://012.0.0.1/"),
    _b("42-cgnat", "http://100.64.0.1/"),
    _b("43a-benchmarking", "http://198.18.0.1/"),
    _a("43b-just-outside-benchmarking", "http://198.20.0.1/"),
    _b("44-test-net-1", "http://192.0.2.1/"),
    _b("45-multicast", "http://224.0.0.1/"),
    _b("46a-class-e", "http://240.0.0.1/"),
    _b("46b-broadcast", "http://255.255.255.255/"),
    _b("47-imds", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
    _b("48-imds-dword", "http://2852039166/"),
    _b("49a-imds-hex", "http://0xA9FEA9FE/"),
    _b("49b-imds-octal", "http://0251.0376.0251.0376/"),
    _b("50-imds-v4-mapped", "http://[::ffff:a9fe:a9fe]/"),
    _b("51-aws-v6-imds", "http://[fd00:ec2::254]/latest/meta-data/"),
    _b("52-ecs-credentials", "http://169.254.170.2/v2/credentials/x"),
    SsrfCase(
        "53a-gcp-metadata-name",
        "http://metadata.google.internal/computeMetadata/v1/",
        "block",
        {"metadata.google.internal": ["169.254.169.254"]},
    ),
    SsrfCase("53b-bare-metadata", "http://metadata/", "block", {"metadata": ["169.254.169.254"]}),
    _b("54-alibaba-imds", "http://100.100.100.200/latest/meta-data/"),
    _b("55-oracle-imds", "http://192.0.0.192/latest/"),
    SsrfCase(
        "56-wildcard-dns", "http://127.0.0.1.nip.io/", "block", {"127.0.0.1.nip.io": ["127.0.0.1"]}
    ),
    SsrfCase("57a-internal-suffix", "http://db.internal/", "block", {"db.internal": ["10.0.0.5"]}),
    _b("57b-local-suffix", "http://svc.local/"),
    _b("57c-localhost-suffix", "http://api.localhost/"),
    SsrfCase(
        "58-deny-if-any", "http://multi.test/", "block", {"multi.test": ["8.8.8.8", "10.0.0.1"]}
    ),
    _b("60-nxdomain", "http://unresolvable.test/"),
    _b("61a-userinfo", "http://evil.test@127.0.0.1/"),
    _b("61b-fragment-at", "http://127.0.0.1#@evil.test/"),
    _b("62-backslash-userinfo", "http://127.1.1.1:80\\@127.2.2.2:80/"),
    _b("64a-ambiguous-public-short", "http://8.8.2056/"),
    _b("64b-ambiguous-public-hex", "http://0x08080808/"),
)

EXTRA_CASES: tuple[SsrfCase, ...] = (
    _b("x01-nul-in-host", "http://127.0.0.1%00.evil.test/"),
    _b("x02-empty-host", "http:///x"),
    _b("x03-scheme-relative", "//127.0.0.1/"),
    _b("x04-port-zero", "http://example.com:0/"),
    _b("x05-localhost-localdomain", "http://localhost.localdomain/"),
    _b("x06-instance-data", "http://instance-data/"),
    _b("x07-kubernetes", "http://kubernetes.default.svc/"),
    _b("x08-siit-translated", "http://[::ffff:0:127.0.0.1]/"),
    _b("x09-discard-prefix", "http://[100::1]/"),
    _b("x10-orchid", "http://[2001:10::1]/"),
    _b("x11-6to4-relay", "http://192.88.99.1/"),
    _b("x12-aws-v6-imds-alt", "http://[fd00:ec2::23]/"),
    _b("x13-mapped-public", "http://[::ffff:8.8.8.8]/"),
    _b("x14-five-octets", "http://1.2.3.4.5/"),
    _b("x15-short-hex", "http://0x7f.1/"),
    _b("x16-ipv6-link-local", "http://[fe80::1]/"),
    _b("x17-credentials-public", "http://user:pass@example.com/"),
    _b("x18-redis-port-loopback", "http://127.0.0.1:6379/"),
    _b("x19-javascript", "javascript:alert(1)"),
    _b("x20-data-url", "data:text/html,<h1>x</h1>"),
    SsrfCase(
        "x21-resolves-to-mapped",
        "http://mapped.test/",
        "block",
        {"mapped.test": ["::ffff:10.0.0.1"]},
    ),
    SsrfCase("x22-resolves-to-v6-loop", "http://six.test/", "block", {"six.test": ["::1"]}),
    _b("x23-trailing-dot-ip-loop", "http://127.0.0.1./"),
    _b("x24-test-net-3", "http://203.0.113.9/"),
    _b("x25-doc-v6", "http://[2001:db8::1]/"),
    _b("x26-leading-space-host", "http:// 127.0.0.1/"),
    _b("x27-home-arpa", "http://printer.home.arpa/"),
    _a("x28-public-v4", "http://8.8.8.8/"),
    _a("x29-public-v6", "https://[2606:4700:4700::1111]/dns-query"),
    _a("x30-cgnat-lower-edge", "http://100.63.255.255/"),
    _a("x31-cgnat-upper-edge", "http://100.128.0.0/"),
    _a("x32-public-name-port", "http://example.com:8443/x", {"example.com": [PUBLIC]}),
    _a("x33-public-name-dot", "https://www.example.com./", {"www.example.com": [PUBLIC]}),
    _a("x34-idna-public", "https://b\u00fccher.de/", {"xn--bcher-kva.de": [PUBLIC]}),
    _a("x35-public-v4-and-v6", "https://dual.test/", {"dual.test": [PUBLIC, "2606:2800:220:1::1"]}),
)

ALLOWLIST_CASES: tuple[SsrfCase, ...] = (
    SsrfCase("al01-ip-entry", "http://127.0.0.1:8080/", "allow", allowlist=("127.0.0.1",)),
    SsrfCase(
        "al02-ip-port-other", "http://127.0.0.1:9090/", "block", allowlist=("127.0.0.1:8080",)
    ),
    SsrfCase(
        "al03-url-entry",
        "http://searx.local:8888/search",
        "allow",
        {"searx.local": ["192.168.1.5"]},
        ("http://SEARX.local.:8888/",),
    ),
    SsrfCase(
        "al04-url-entry-wrong-port",
        "http://searx.local:9999/search",
        "block",
        {"searx.local": ["192.168.1.5"]},
        ("http://searx.local:8888/",),
    ),
    SsrfCase(
        "al05-metadata-ip-never", "http://169.254.169.254/", "block", allowlist=("169.254.169.254",)
    ),
    SsrfCase(
        "al06-metadata-name-never",
        "http://metadata.google.internal/",
        "block",
        {"metadata.google.internal": ["169.254.169.254"]},
        ("metadata.google.internal",),
    ),
    SsrfCase("al07-cidr-entry", "http://10.1.2.3/", "allow", allowlist=("10.0.0.0/8",)),
    SsrfCase(
        "al08-localhost-name",
        "http://localhost:3000/",
        "allow",
        {"localhost": ["127.0.0.1"]},
        ("LOCALHOST.",),
    ),
    SsrfCase("al09-v6-port-entry", "http://[::1]:8080/", "allow", allowlist=("[::1]:8080",)),
    SsrfCase("al10-scheme-never", "file:///etc/passwd", "block", allowlist=("127.0.0.1",)),
    SsrfCase("al11-ambiguous-never", "http://0x7f.0.0.1/", "block", allowlist=("127.0.0.1",)),
    SsrfCase(
        "al12-name-does-not-open-others",
        "http://other.test/",
        "block",
        {"other.test": ["10.0.0.9"]},
        ("nas.test",),
    ),
    SsrfCase(
        "al13-imds-behind-allowed-name",
        "http://nas.test/",
        "block",
        {"nas.test": ["10.0.0.9", "169.254.169.254"]},
        ("nas.test",),
    ),
)

ALL_CASES: tuple[SsrfCase, ...] = REFERENCE_CASES + EXTRA_CASES + ALLOWLIST_CASES


class StubResolver:
    """Answers from a fixed table, counts its calls, never touches real DNS."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = dict(table or {})
        self.calls: list[str] = []

    async def resolve(self, host: str) -> list[str]:
        """The table's answer; OSError (as getaddrinfo raises) when the name is absent."""
        self.calls.append(host)
        if host not in self.table:
            raise OSError(f"stub resolver: {host} does not resolve")
        return list(self.table[host])


class SequenceResolver:
    """Answers a different address list on each call: a rebinding DNS server."""

    def __init__(self, answers: list[list[str]]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    async def resolve(self, host: str) -> list[str]:
        """The next answer in the sequence (the last one repeats)."""
        self.calls.append(host)
        index = min(len(self.calls) - 1, len(self.answers) - 1)
        return list(self.answers[index])
