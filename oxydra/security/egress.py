"""The one HTTP client for outbound fetches: every hop vetted by the SSRF guard, IP pinned.

How the pin works: the request goes to a URL whose host is the vetted address, while the
`Host` header and the TLS SNI (httpcore's `sni_hostname` extension, also used for
certificate checking) carry the original name. The connection layer is handed an address,
never a name, so there is no second lookup for a rebinding DNS server to answer. Redirects
are followed here, one hop at a time, each re-vetted; environment proxies are ignored.

The `Connector` seam is httpcore's network backend: tests pass one that records the address
and fails the test on anything but loopback.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec

from oxydra._lazy import LazyModule
from oxydra.core.errors import PolicyError, ToolError, ToolTimeoutError
from oxydra.security._connector import Connector
from oxydra.security._inflate import ACCEPT_ENCODING, BodyDecoder, encodings
from oxydra.security.ssrf import SsrfGuard, VettedTarget, parse_url

if TYPE_CHECKING:
    import httpx
else:
    httpx = LazyModule("httpx")  # loaded by the first fetch, not by an idle server

USER_AGENT = "oxydra/0.3 (+https://github.com/shantanugoel/oxydra)"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FetchResponse(msgspec.Struct, frozen=True, kw_only=True):
    """A fetched response, body read up to the caller's cap.

    Attributes:
        url: the final URL, after redirects, as the user would write it (with the name).
        redirects: the URLs that redirected, in order.
        truncated: the body was longer than `max_bytes` and was cut.
    """

    url: str
    status: int
    headers: dict[str, str]
    content: bytes
    truncated: bool = False
    redirects: tuple[str, ...] = ()

    @property
    def content_type(self) -> str:
        """The media type without parameters, lowercased."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class EgressClient:
    """Fetches URLs through the SSRF guard with IP pinning and re-vetted redirects.

    Args:
        guard: decides every hop.
        connector: the TCP seam; httpcore's AnyIO backend unless a test injects one.
        max_redirects: hops followed before giving up (each one re-vetted).
        max_encodings: stacked `Content-Encoding`s decoded before refusing the body.
        timeout: seconds for connect, read and write each.
        verify: TLS verification (an `ssl.SSLContext` or a bool).
    """

    def __init__(
        self,
        guard: SsrfGuard,
        *,
        connector: Connector | None = None,
        max_redirects: int = 5,
        max_encodings: int = 2,
        timeout: float = 30.0,
        verify: ssl.SSLContext | bool = True,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.guard = guard
        self._connector = connector  # httpcore's AnyIO backend, made by the first fetch
        self._max_redirects = max_redirects
        self._max_encodings = max_encodings
        self._timeout = timeout
        self._verify = verify
        self._ssl: ssl.SSLContext | None = verify if isinstance(verify, ssl.SSLContext) else None
        self._user_agent = user_agent

    async def fetch(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        max_bytes: int = 5 * 1024 * 1024,
    ) -> FetchResponse:
        """GET `url`, following redirects; raise PolicyError on a refused hop.

        Caller headers go only to the original origin: a redirect to another host never
        receives them (they may carry an API key).
        """
        current = parse_url(url)
        if params:
            current = current.copy_merge_params(dict(params))
        origin = (current.scheme, current.host, current.port)
        vetted: set[str] = set()
        from oxydra.security._pinned import (
            AddressOnlyBackend,
            PinnedTransport,
            default_connector,
            ssl_context,
        )

        if self._ssl is None:  # built on first use: loading the CA bundle takes a while
            self._ssl = ssl_context(bool(self._verify))
        if self._connector is None:
            self._connector = default_connector()
        transport = PinnedTransport(self._ssl, AddressOnlyBackend(self._connector, vetted))
        redirects: list[str] = []
        async with httpx.AsyncClient(
            transport=transport, trust_env=False, follow_redirects=False, timeout=self._timeout
        ) as client:
            for _hop in range(self._max_redirects + 1):
                target = await self.guard.vet(current)
                vetted.add(target.pinned)
                same_origin = (current.scheme, current.host, current.port) == origin
                response = await self._get(
                    client, current, target, headers if same_origin else None, max_bytes
                )
                location = response.headers.get("location")
                if response.status not in _REDIRECTS or not location:
                    return msgspec.structs.replace(response, redirects=tuple(redirects))
                redirects.append(str(current))
                current = _follow(current, location)
        raise PolicyError(f"refused to fetch {url}: more than {self._max_redirects} redirects")

    async def _get(
        self,
        client: httpx.AsyncClient,
        url: httpx.URL,
        target: VettedTarget,
        headers: Mapping[str, str] | None,
        max_bytes: int,
    ) -> FetchResponse:
        request = client.build_request(
            "GET",
            url.copy_with(host=target.pinned),
            headers=self._headers(url, headers),
            extensions={"sni_hostname": target.host},
        )
        try:
            response = await client.send(request, stream=True)
            try:
                body, truncated = await self._read_capped(response, max_bytes)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise ToolTimeoutError(f"fetching {url} timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise ToolError(f"fetching {url} failed: {exc or type(exc).__name__}") from exc
        return FetchResponse(
            url=str(url),
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            content=body,
            truncated=truncated,
        )

    async def _read_capped(self, response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
        """The body decoded incrementally, at most `max_bytes` of it, inflating off the loop.

        Compressed input is capped too, so a body that inflates to nothing cannot stream forever.
        """
        codings = encodings(
            response.headers.get("content-encoding", ""), max_layers=self._max_encodings
        )
        decoder = BodyDecoder(codings, max_output=max_bytes)
        chunks: list[bytes] = []
        raw = 0
        async for chunk in response.aiter_raw():
            raw += len(chunk)
            chunks.append(
                await asyncio.to_thread(decoder.feed, chunk) if codings else decoder.feed(chunk)
            )
            if decoder.done or raw > max_bytes:
                return b"".join(chunks), True
        return b"".join(chunks), False

    def _headers(self, url: httpx.URL, extra: Mapping[str, str] | None) -> dict[str, str]:
        host = url.raw_host.decode("ascii")
        if ":" in host:
            host = f"[{host}]"
        if url.port is not None:
            host = f"{host}:{url.port}"
        merged = {
            "User-Agent": self._user_agent,
            "Accept": "*/*",
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        merged.update(extra or {})
        merged["Host"] = host
        return merged


def _follow(current: httpx.URL, location: str) -> httpx.URL:
    try:
        return current.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise PolicyError(f"refused to follow redirect to {location!r}: {exc}") from exc
