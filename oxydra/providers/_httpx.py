"""The provider path over httpx, for what `_h1` does not do: proxies from the environment, and
a client handed in by the caller (`http_client=`).

It offers `_h1`'s shape (`send` returning a response with `aiter_raw`, `aiter_bytes` and
`aclose`) and raises `_h1`'s errors, so `HttpEndpoint` and the stream pump see one transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import httpx

from oxydra.providers._h1 import HttpError, HttpTimeout, HttpUrlError


def _translate(exc: httpx.HTTPError | httpx.InvalidURL) -> HttpError:
    if isinstance(exc, httpx.TimeoutException):
        return HttpTimeout(f"timed out ({type(exc).__name__})")
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return HttpUrlError(str(exc))
    if isinstance(exc, httpx.LocalProtocolError):
        # h11's message quotes the offending header value, which may be an API key
        try:
            raw = exc.request.headers.raw
        except RuntimeError:  # no request attached
            raw = []
        names = [n.decode("latin-1") for n, v in raw if any(c in n + v for c in b"\r\n\0")]
        return HttpError(
            f"illegal characters in a request header ({', '.join(names) or 'a name or value'})"
        )
    return HttpError(f"{type(exc).__name__}: {exc}")


async def _translated(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`chunks`, with httpx's errors raised as `_h1`'s."""
    try:
        async for chunk in chunks:
            yield chunk
    except httpx.HTTPError as exc:
        raise _translate(exc) from exc


class HttpxResponse:
    """An httpx response read through `_h1`'s interface."""

    __slots__ = ("_response",)

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def is_success(self) -> bool:
        return self._response.is_success

    def aiter_raw(self) -> AsyncIterator[bytes]:
        return _translated(self._response.aiter_raw())

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        return _translated(self._response.aiter_bytes())

    async def aclose(self) -> None:
        try:
            await self._response.aclose()
        except httpx.HTTPError:
            pass


def _without_cookies(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """`client`, its jar keeping nothing: a provider's cookies are not sent back (`_h1` keeps
    none). The policy is set on the client's own jar: httpx copies a jar handed to it."""
    from http.cookiejar import DefaultCookiePolicy

    client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return client


class HttpxTransport:
    """An `httpx.AsyncClient`, handed in (then not closed here, nor changed: its cookie policy
    is the caller's) or made for a proxy (then keeping no cookies)."""

    def __init__(
        self,
        client: httpx.AsyncClient | None,
        *,
        timeout: float,
        connect_timeout: float,
        verify: bool,
    ) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._owned = client is None
        self.client = client or _without_cookies(
            httpx.AsyncClient(timeout=self._timeout, verify=verify)
        )

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> HttpxResponse:
        """Send a request; return once the response's head is in.

        The head must come within connecting, sending and one read's time: httpx bounds each
        read, and skips 1xx responses without end, so a server sending `100 Continue` forever
        would hold the call (`_h1` counts them)."""
        wait = self.timeout if timeout is None else timeout
        limit = self._timeout if timeout is None else httpx.Timeout(timeout)
        try:
            request = self.client.build_request(
                method,
                url,
                params=params or None,
                content=body or None,
                headers=headers,
                timeout=limit,
            )
            async with asyncio.timeout(self.connect_timeout + 2 * wait):
                return HttpxResponse(await self.client.send(request, stream=True))
        except TimeoutError:
            raise HttpTimeout(
                f"no response head in {self.connect_timeout + 2 * wait:g} s"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _translate(exc) from exc

    async def aclose(self) -> None:
        if self._owned:
            await self.client.aclose()
