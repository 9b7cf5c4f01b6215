"""The provider path over httpx, for what `_h1` does not do: proxies from the environment, and
a client handed in by the caller (`http_client=`).

It offers `_h1`'s shape (`send` returning a response with `aiter_raw`, `aiter_bytes`, `aread`,
`aclose`) and raises `_h1`'s errors, so `HttpEndpoint` and the stream pump see one transport.
"""

from __future__ import annotations

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

    @property
    def content(self) -> bytes:
        return self._response.content

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            raise _translate(exc) from exc

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise _translate(exc) from exc

    async def aread(self) -> bytes:
        try:
            return await self._response.aread()
        except httpx.HTTPError as exc:
            raise _translate(exc) from exc

    async def aclose(self) -> None:
        try:
            await self._response.aclose()
        except httpx.HTTPError:
            pass


class HttpxTransport:
    """An `httpx.AsyncClient`, handed in (then not closed here) or made for a proxy."""

    def __init__(
        self,
        client: httpx.AsyncClient | None,
        *,
        timeout: float,
        connect_timeout: float,
        verify: bool,
    ) -> None:
        self.timeout = timeout
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._owned = client is None
        self.client = client or httpx.AsyncClient(timeout=self._timeout, verify=verify)

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
        """Send a request; return once the response's head is in."""
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
            return HttpxResponse(await self.client.send(request, stream=True))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _translate(exc) from exc

    async def aclose(self) -> None:
        if self._owned:
            await self.client.aclose()
