"""SSRF guard: decide whether a URL may be fetched, and which address to connect to.

Theory of operation (one call to `SsrfGuard.vet` per request and per redirect hop):
1. Parse with httpx's own URL parser, the one the client will use (urllib.parse and urllib3
   disagree on hosts like `127.1.1.1:80\\@127.2.2.2`). Only `http`/`https`; no userinfo.
2. Normalize the host: IDNA (done by httpx, so `127。0。0。1` is already `127.0.0.1`),
   lowercase, one trailing dot stripped. `%`, NUL and other odd characters are refused.
3. IPv6 literals are classified; IPv4 literals are decoded as `inet_aton` would and refused
   unless spelled as a canonical dotted quad; names are checked against the reserved list,
   then resolved ONCE through the injected `Resolver`.
4. Every resolved address must pass the range table (deny if any fails), unless the egress
   allowlist opens it. Metadata addresses and names are never opened by the allowlist.
5. The result pins one vetted address; the HTTP layer connects to it and never resolves
   again, so a rebinding DNS answer cannot change the destination.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

import msgspec

from oxydra._lazy import LazyModule
from oxydra.core.errors import PolicyError
from oxydra.security import _hosts
from oxydra.security._ipranges import IPAddress, Verdict, classify

if TYPE_CHECKING:
    import httpx
else:
    httpx = LazyModule("httpx")  # loaded by the first request, not by an idle server

Scheme = Literal["http", "https"]
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Resolver(Protocol):
    """Turns a host name into addresses (A and AAAA). Tests inject a fake; nothing else may."""

    async def resolve(self, host: str) -> list[str]:
        """All addresses of `host`; an empty list or an OSError means it did not resolve."""
        ...


class SystemResolver:
    """The platform resolver (`getaddrinfo`) through the event loop's thread pool."""

    async def resolve(self, host: str) -> list[str]:
        """Addresses of `host` for TCP, IPv4 and IPv6, without duplicates."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


class VettedTarget(msgspec.Struct, frozen=True, kw_only=True):
    """A URL that passed the guard, with the address the connection must use.

    Attributes:
        url: the URL as normalized by httpx.
        host: the normalized host name or literal (what Host/SNI carry).
        port: explicit port or the scheme default.
        addresses: every address the host resolved to, all vetted.
        pinned: the address to connect to (the first IPv4 answer, else the first one).
        allowlisted: whether the egress allowlist opened a non-public destination.
    """

    url: str
    scheme: Scheme
    host: str
    port: int
    addresses: tuple[str, ...]
    pinned: str
    allowlisted: bool = False


class _Allowlist(msgspec.Struct, frozen=True):
    names: frozenset[tuple[str, int | None]]
    networks: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None], ...]


def parse_allowlist(entries: Iterable[str]) -> _Allowlist:
    """Parse `egress_allowlist` entries: `host`, `host:port`, IP, `[v6]:port`, CIDR or URL.

    Entries are lowercased, a trailing dot is stripped and URLs are reduced to host[:port]
    (the Rust version's normalization). An entry that cannot be read is a ConfigError-worthy
    mistake, reported as PolicyError naming the entry.
    """
    names: set[tuple[str, int | None]] = set()
    networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None]] = []
    for raw in entries:
        host, port = _split_entry(raw.strip())
        try:
            networks.append((ipaddress.ip_network(host, strict=False), port))
        except ValueError:
            names.add((_hosts.normalize_name(host), port))
    return _Allowlist(frozenset(names), tuple(networks))


def _split_entry(entry: str) -> tuple[str, int | None]:
    if "://" in entry:
        url = httpx.URL(entry)
        return url.raw_host.decode("ascii"), url.port
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
    return entry, None


class SsrfGuard:
    """Vets URLs for outbound fetches; see the module docstring for the rules.

    Args:
        resolver: how names become addresses; `SystemResolver()` unless a test injects one.
        allowlist: `egress_allowlist` entries that may reach non-public destinations.
    """

    def __init__(self, *, resolver: Resolver | None = None, allowlist: Iterable[str] = ()) -> None:
        self._resolver = resolver if resolver is not None else SystemResolver()
        self._allow = parse_allowlist(allowlist)

    async def vet(self, url: str | httpx.URL) -> VettedTarget:
        """Check `url` and resolve its host once; raise PolicyError when it must not be fetched."""
        parsed = parse_url(url)
        scheme, host, port = _split_target(parsed)
        addresses, literal = await self._addresses(host, port)
        allowlisted = self._check_all(host, port, addresses, literal)
        return VettedTarget(
            url=str(parsed),
            scheme=scheme,
            host=host,
            port=port,
            addresses=tuple(a.compressed for a in addresses),
            pinned=_preferred(addresses).compressed,
            allowlisted=allowlisted,
        )

    async def _addresses(self, host: str, port: int) -> tuple[list[IPAddress], bool]:
        literal = _literal_address(host)
        if literal is not None:
            return [literal], True
        if host in _hosts.METADATA_NAMES:
            raise PolicyError(
                f"refused to fetch from {host}: cloud metadata names are never allowed"
            )
        reason = _hosts.reserved_name(host)
        if reason is not None and not self._name_allowed(host, port):
            raise PolicyError(f"refused to fetch from {host}: {reason}")
        return await self._resolve(host), False

    async def _resolve(self, host: str) -> list[IPAddress]:
        try:
            answers = await self._resolver.resolve(host)
        except OSError as exc:
            raise PolicyError(f"refused to fetch from {host}: it does not resolve") from exc
        addresses = [_parse_answer(host, a) for a in answers]
        if not addresses:
            raise PolicyError(f"refused to fetch from {host}: it does not resolve")
        return addresses

    def _check_all(
        self, host: str, port: int, addresses: Sequence[IPAddress], literal: bool
    ) -> bool:
        allowlisted = False
        for address in addresses:
            verdict = classify(address)
            if verdict.public:
                continue
            if verdict.kind != "metadata" and self._opened(host, port, address, literal):
                allowlisted = True
                continue
            raise PolicyError(_refusal(host, verdict))
        return allowlisted

    def _opened(self, host: str, port: int, address: IPAddress, literal: bool) -> bool:
        if not literal and self._name_allowed(host, port):
            return True
        return any(
            address in network and entry_port in (None, port)
            for network, entry_port in self._allow.networks
        )

    def _name_allowed(self, host: str, port: int) -> bool:
        return (host, None) in self._allow.names or (host, port) in self._allow.names


def _preferred(addresses: Sequence[IPAddress]) -> IPAddress:
    """The address to pin: the first IPv4 answer (IPv6 reachability is less certain)."""
    return next((a for a in addresses if a.version == 4), addresses[0])


def _refusal(host: str, verdict: Verdict) -> str:
    where = host if host == verdict.address else f"{host} ({verdict.address})"
    return f"refused to fetch from {where}: {verdict.reason}"


def parse_url(url: str | httpx.URL) -> httpx.URL:
    """Parse `url` with httpx's parser (the client's own); PolicyError when it cannot be read."""
    if isinstance(url, httpx.URL):
        return url
    if "\x00" in url:
        raise PolicyError("refused to fetch: the URL contains a NUL byte")
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise PolicyError(f"refused to fetch: the URL cannot be parsed ({exc})") from exc


def _split_target(url: httpx.URL) -> tuple[Scheme, str, int]:
    scheme = url.scheme
    if scheme not in ("http", "https"):
        shown = scheme or "(none)"
        raise PolicyError(f"refused to fetch: scheme '{shown}' is not allowed (only http, https)")
    if url.userinfo:
        raise PolicyError("refused to fetch: URLs with credentials (user:pass@) are not allowed")
    host = _normalized_host(url)
    port = url.port if url.port is not None else _DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise PolicyError(f"refused to fetch: port {port} is out of range")
    return ("https" if scheme == "https" else "http"), host, port


def _normalized_host(url: httpx.URL) -> str:
    try:
        raw = url.raw_host.decode("ascii")
    except UnicodeDecodeError as exc:
        raise PolicyError("refused to fetch: the host is not ASCII after IDNA") from exc
    host = _hosts.normalize_name(raw)
    if not host:
        raise PolicyError("refused to fetch: the URL has no host")
    if any(ch in host for ch in "%\\@ ") or not host.isprintable():
        raise PolicyError(f"refused to fetch: the host {host!r} contains a forbidden character")
    return host


def _literal_address(host: str) -> IPAddress | None:
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise PolicyError(f"refused to fetch: {host!r} is not a valid IPv6 address") from exc
    if not _hosts.looks_numeric(host):
        if not _hosts.valid_hostname(host):
            raise PolicyError(f"refused to fetch: {host!r} is not a valid host name")
        return None
    decoded = _hosts.parse_inet_aton(host)
    if decoded is None:
        raise PolicyError(f"refused to fetch: {host!r} is neither a name nor an IPv4 address")
    if not _hosts.is_canonical_ipv4(host, decoded):
        raise PolicyError(
            f"refused to fetch: {host!r} is an ambiguous IPv4 spelling (a resolver reads it as "
            f"{decoded}); write the address as a plain dotted quad"
        )
    return decoded


def _parse_answer(host: str, answer: str) -> IPAddress:
    try:
        address = ipaddress.ip_address(answer.split("%", 1)[0])
    except ValueError as exc:
        raise PolicyError(
            f"refused to fetch from {host}: the resolver returned {answer!r}"
        ) from exc
    return address
