"""The one place the provider layer meets HTTP: sending, error mapping, URL joining.

Requests go through `_h1` (a small asyncio HTTP/1.1 client), or through httpx when the
environment names a proxy or the caller hands in a client (`_httpx`); both raise `_h1`'s
errors, translated here (`raise ... from exc`): timeouts become `ProviderTimeoutError`, other
transport failures `ProviderTransportError`, a bad base URL a `ConfigError`. Error statuses
become the typed errors of `oxydra.wire.error_for_status`, with `Retry-After` (seconds or an
HTTP date, or `retry-after-ms`) read into `retry_after`. Every message names the entry and the
URL it called (without any userinfo), so a 404 from a wrong `base_url` says which URL was wrong.
Bodies are read bounded: an error's to `MAX_ERROR_BODY` bytes, a whole answer's to `MAX_BODY`
(past it, a `ProviderProtocolError`), so a server that never ends its body cannot fill memory.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit, urlunsplit

import msgspec

from oxydra import _phases as phases
from oxydra.core.errors import (
    ConfigError,
    ProviderHTTPError,
    ProviderProtocolError,
    ProviderTimeoutError,
    ProviderTransportError,
)
from oxydra.providers._h1 import H1Client, HttpError, HttpTimeout, HttpUrlError
from oxydra.wire import WireRequest, error_for_status, parse_error_body
from oxydra.wire._common import describe_body

if TYPE_CHECKING:
    import httpx


class Response(Protocol):
    """What the provider path reads of a response (`_h1.H1Response`, `_httpx.HttpxResponse`)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def is_success(self) -> bool: ...
    def aiter_raw(self) -> AsyncIterator[bytes]: ...
    def aiter_bytes(self) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...


class Transport(Protocol):
    """Sends a request and returns its response once the head is in."""

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response: ...
    async def aclose(self) -> None: ...


MAX_ERROR_BODY = 64 * 1024
MAX_BODY = 32 * 1024 * 1024  # a whole (non-streamed) answer
_VERSION = re.compile(r"v[0-9]+(?:(?:alpha|beta)[0-9]*)?")


def join_url(base_url: str, path: str) -> str:
    """Append an API path (`/v1/...`) to a base URL.

    A base that already ends in a version segment (`.../v1`, `.../v1beta`, as OpenAI-SDK users
    write it) keeps its own version and the path's is dropped, so nothing is doubled.
    """
    base = base_url.strip().rstrip("/")
    head, _, rest = path.lstrip("/").partition("/")
    last = base.rsplit("/", 1)[-1]
    if _VERSION.fullmatch(last) and _VERSION.fullmatch(head):
        return f"{base}/{rest}"
    return f"{base}/{path.lstrip('/')}"


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (delta-seconds or HTTP-date);
    None when absent or not a finite number (`nan`, `inf` are the server's garbage)."""
    if ms := headers.get("retry-after-ms"):
        with contextlib.suppress(ValueError):
            return _finite(float(ms) / 1000)
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return _finite(float(value))
    try:
        from email.utils import parsedate_to_datetime  # a Retry-After date: rare

        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _finite(seconds: float) -> float | None:
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def shown_url(url: str) -> str:
    """`url` fit for a message: no userinfo, no query."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def status_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes, url: str = ""
) -> ProviderHTTPError:
    """The typed error for an error response, naming the URL that answered."""
    info = parse_error_body(body)
    if url:
        info = msgspec.structs.replace(info, message=f"{info.message} ({provider}: {url})")
    text = body[:MAX_ERROR_BODY].decode("utf-8", "replace")
    retry_after = parse_retry_after(headers)
    return error_for_status(status, info, provider=provider, body=text, retry_after=retry_after)


@contextlib.contextmanager
def translated(provider: str, url: str = "") -> Iterator[None]:
    """Translate the transport's exceptions raised inside the block into ours."""
    at = f" {url}" if url else ""
    try:
        yield
    except HttpTimeout as exc:
        raise ProviderTimeoutError(f"{provider}:{at} {exc}", provider=provider) from exc
    except HttpUrlError as exc:
        raise ConfigError(
            f"{provider}: invalid base_url: {exc}", key=f"providers.registry.{provider}.base_url"
        ) from exc
    except HttpError as exc:
        raise ProviderTransportError(f"{provider}:{at} {exc}", provider=provider) from exc


def describe_transport_error(exc: BaseException) -> str:
    """A one-line reason for a dropped stream."""
    if isinstance(exc, HttpTimeout):
        return f"no data from the provider in time ({exc})"
    return f"connection lost: {exc}"


def _is_html(response: Response, body: bytes) -> bool:
    kind = response.headers.get("content-type", "")
    return "html" in kind or body.lstrip()[:1] == b"<"


class HttpEndpoint:
    """An API root with its headers, over an owned transport or a shared httpx client.

    Args:
        provider: registry entry name, for messages.
        base_url: the API root.
        headers: sent with every request (auth, version, `extra_headers`).
        client: a shared httpx client (not closed here); when None the endpoint owns its
            transport: `_h1`, or httpx when the environment names a proxy.
        timeout: seconds for connecting and for each read.
        environ: where proxy settings are read (default `os.environ`).
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        client: httpx.AsyncClient | None = None,
        timeout: float = 120.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url
        self.headers = {"content-type": "application/json", **headers}
        self.stream_headers = {**self.headers, "accept": "text/event-stream"}
        self._timeout_secs = timeout
        self._client = client
        self._environ = os.environ if environ is None else environ
        self._transport: Transport | None = None

    @property
    def transport(self) -> Transport:
        """The transport, made at the first request.

        For a plain-HTTP API root (a local server) no TLS is ever negotiated, so the CA
        bundle is not loaded: that alone saves ~20 ms per start.
        """
        if self._transport is None:
            connect = min(self._timeout_secs, 15.0)
            if self._client is None and not _proxied(self._environ):
                self._transport = H1Client(timeout=self._timeout_secs, connect_timeout=connect)
            else:
                from oxydra.providers._httpx import HttpxTransport

                plain = self.base_url.lower().startswith("http://")
                self._transport = HttpxTransport(
                    self._client,
                    timeout=self._timeout_secs,
                    connect_timeout=connect,
                    verify=not plain,
                )
        return self._transport

    def url(self, request: WireRequest) -> str:
        """The full URL of a wire request."""
        return join_url(self.base_url, request.path)

    async def _send(self, request: WireRequest, *, stream: bool) -> Response:
        return await self.transport.send(
            "POST",
            self.url(request),
            self.stream_headers if stream else self.headers,
            request.encode(),
            params=request.query or None,
        )

    async def post(self, request: WireRequest) -> bytes:
        """Send a non-streaming request; return the body of a 2xx JSON answer.

        Raises:
            ProviderHTTPError: an error status (typed by status and message).
            ProviderProtocolError: an empty body or an HTML page instead of JSON.
            ProviderTransportError, ProviderTimeoutError: the connection failed.
        """
        url = shown_url(self.url(request))
        with translated(self.provider, url):
            response = await self._send(request, stream=False)
            try:
                body = await self._read(response, url)
            finally:
                await response.aclose()
        return self._checked(response, body, url)

    async def get(self, path: str, *, timeout: float) -> bytes:
        """GET an API path (`/v1/models`); the 2xx JSON body, else the same errors as `post`."""
        url = join_url(self.base_url, path)
        with translated(self.provider, shown_url(url)):
            response = await self.transport.send("GET", url, self.headers, timeout=timeout)
            try:
                body = await self._read(response, shown_url(url))
            finally:
                await response.aclose()
        return self._checked(response, body, shown_url(url))

    async def _read(self, response: Response, url: str) -> bytes:
        """The body, bounded: an error's cut at `MAX_ERROR_BODY`, an answer past `MAX_BODY`
        refused."""
        if not response.is_success:
            return await read_limited(response, MAX_ERROR_BODY)
        body = await read_limited(response, MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise ProviderProtocolError(
                f"{self.provider}: {url}: the response body is over {MAX_BODY} bytes",
                provider=self.provider,
            )
        return body

    def _checked(self, response: Response, body: bytes, url: str) -> bytes:
        if not response.is_success:
            raise status_error(self.provider, response.status_code, response.headers, body, url)
        if not body.strip():
            raise ProviderProtocolError(
                f"{self.provider}: {url}: empty body with HTTP {response.status_code}",
                provider=self.provider,
            )
        if _is_html(response, body):
            raise ProviderProtocolError(
                f"{self.provider}: {url}: expected JSON, got {describe_body(body)}",
                provider=self.provider,
            )
        return body

    @contextlib.asynccontextmanager
    async def open_stream(self, request: WireRequest) -> AsyncIterator[Response]:
        """Open a streaming request; yields the response once its status is a success."""
        url = shown_url(self.url(request))
        with translated(self.provider, url):
            response = await self._send(request, stream=True)
        phases.switch("first_byte")  # the headers are in: the body's first chunk is awaited
        try:
            if not response.is_success:
                with translated(self.provider, url):
                    body = await read_limited(response, MAX_ERROR_BODY)
                raise status_error(self.provider, response.status_code, response.headers, body, url)
            yield response
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        """Close the transport (a handed-in httpx client stays open)."""
        if self._transport is not None:
            transport, self._transport = self._transport, None
            await transport.aclose()


def _proxied(environ: Mapping[str, str]) -> bool:
    """Whether the environment names a proxy (httpx then applies it, with `NO_PROXY`)."""
    return any(
        environ.get(name) or environ.get(name.upper())
        for name in ("https_proxy", "http_proxy", "all_proxy")
    )


async def read_limited(response: Response, limit: int) -> bytes:
    """Read at most `limit` bytes of a streamed body (the rest is left to the response's
    close, which then drops the connection)."""
    chunks: list[bytes] = []
    size = 0
    body = response.aiter_bytes()
    try:
        async for chunk in body:
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    finally:
        await body.aclose()  # type: ignore[attr-defined]  # an async generator
    return b"".join(chunks)[:limit]
