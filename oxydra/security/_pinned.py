"""The transports of outbound fetches: connections only to vetted addresses, IP pinned.

Loaded by the first fetch (`EgressClient.fetch`) or MCP-over-HTTP client
(`GuardedTransport`), not at start: these classes extend httpx's and httpcore's, and those
libraries are ~5 MiB of an idle server. How the pin works: docs in `egress.py`.
"""

from __future__ import annotations

import ipaddress
import ssl

import httpcore
import httpx

from oxydra.security._connector import Connector, _SocketOptions
from oxydra.security.ssrf import SsrfGuard


def default_connector() -> Connector:
    """httpcore's AnyIO backend: the real network."""
    return httpcore.AnyIOBackend()


def ssl_context(verify: bool) -> ssl.SSLContext:
    """httpx's TLS context (the CA bundle loaded when `verify`)."""
    return httpx.create_ssl_context(verify=verify)


class AddressOnlyBackend(httpcore.AsyncNetworkBackend):
    """Refuses to connect to anything that is not an address the guard vetted."""

    def __init__(self, inner: Connector, vetted: set[str]) -> None:
        self._inner = inner
        self._vetted = vetted

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: _SocketOptions | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if _canonical(host) not in self._vetted:
            raise httpcore.ConnectError(f"refused to connect to unvetted host {host!r}")
        return await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _canonical(host: str) -> str:
    try:
        return ipaddress.ip_address(host.strip("[]")).compressed
    except ValueError:
        return ""


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over our own connection pool (no proxy, custom network backend)."""

    def __init__(self, ssl_context: ssl.SSLContext, backend: httpcore.AsyncNetworkBackend) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, network_backend=backend, max_connections=4, retries=0
        )


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that vets every request's URL and pins the connection to the address.

    For long-lived protocol clients (MCP over HTTP) that need POST, streaming and their own
    headers: each request goes through `guard.vet` (PolicyError when refused), its URL is
    rewritten to the vetted address, and Host/SNI keep the name. Redirects are not followed
    here; a client using this transport must leave `follow_redirects` off.
    """

    def __init__(
        self,
        guard: SsrfGuard,
        *,
        connector: Connector | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.guard = guard
        self._vetted: set[str] = set()
        context = verify if isinstance(verify, ssl.SSLContext) else ssl_context(verify)
        backend = AddressOnlyBackend(connector or httpcore.AnyIOBackend(), self._vetted)
        self._inner = PinnedTransport(context, backend)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Vet, pin, then send through the address-only pool."""
        target = await self.guard.vet(request.url)
        self._vetted.add(target.pinned)
        request.url = request.url.copy_with(host=target.pinned)
        request.extensions = {**request.extensions, "sni_hostname": target.host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._inner.aclose()
