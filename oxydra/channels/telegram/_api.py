"""A thin Bot API client over httpx: the one place httpx meets the Telegram channel.

Every httpx exception becomes a `TelegramApiError` with code 0 (retryable: the network),
answers are decoded by `oxydra.wire.telegram.decode_result`. Long polls get their own client
without keep-alive (a half-open pooled connection is the classic way a poller wedges), with
a read timeout longer than the poll's own. The token is in every URL, so it never appears
in an error message: URLs are not quoted, only the method name.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from oxydra.wire.telegram import TelegramApiError, decode_result

POLL_MARGIN_SECS = 10.0
SEND_TIMEOUT_SECS = 30.0


class BotApi:
    """Calls `<base>/bot<token>/<method>` and downloads `<base>/file/bot<token>/<path>`."""

    def __init__(self, base_url: str, token: str) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._send = httpx.AsyncClient(timeout=SEND_TIMEOUT_SECS, trust_env=False)
        self._poll: httpx.AsyncClient | None = None

    def _poller(self, poll_secs: float) -> httpx.AsyncClient:
        if self._poll is None:
            self._poll = httpx.AsyncClient(
                timeout=httpx.Timeout(poll_secs + POLL_MARGIN_SECS, connect=10.0),
                limits=httpx.Limits(max_keepalive_connections=0),
                trust_env=False,
            )
        return self._poll

    async def reset_poller(self) -> None:
        """Drop the polling client (the watchdog's remedy for a wedged poll)."""
        client, self._poll = self._poll, None
        if client is not None:
            await client.aclose()

    async def call(self, method: str, params: dict[str, Any] | None = None) -> msgspec.Raw:
        """A method with a JSON body; returns the raw `result`."""
        return await self._post(self._send, method, json=params or {})

    async def poll(self, offset: int, timeout_secs: int) -> msgspec.Raw:
        """`getUpdates` from `offset`, waiting up to `timeout_secs` for the first update."""
        params = {"offset": offset, "timeout": timeout_secs, "allowed_updates": ["message"]}
        return await self._post(self._poller(timeout_secs), "getUpdates", json=params)

    async def upload(
        self, method: str, field: str, name: str, data: bytes, params: dict[str, Any]
    ) -> msgspec.Raw:
        """A method with a file (multipart): `sendDocument`, `sendPhoto`, ..."""
        form = {k: str(v) for k, v in params.items() if v is not None}
        return await self._post(self._send, method, data=form, files={field: (name, data)})

    async def download(self, file_path: str, max_bytes: int) -> bytes:
        """A file's bytes; more than `max_bytes` is refused while reading."""
        url = f"{self._base}/file/bot{self._token}/{file_path.lstrip('/')}"
        try:
            async with self._send.stream("GET", url) as response:
                if response.status_code != 200:
                    raise TelegramApiError(
                        f"file download answered {response.status_code}",
                        error_code=response.status_code,
                    )
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise TelegramApiError(
                            f"file is larger than {max_bytes} bytes", error_code=413
                        )
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            raise TelegramApiError(f"file download failed: {type(exc).__name__}") from exc

    async def _post(self, client: httpx.AsyncClient, method: str, **kwargs: Any) -> msgspec.Raw:
        url = f"{self._base}/bot{self._token}/{method}"
        try:
            response = await client.post(url, **kwargs)
        except httpx.TimeoutException as exc:
            raise TelegramApiError(f"{method} timed out") from exc
        except httpx.HTTPError as exc:
            raise TelegramApiError(f"{method} failed: {type(exc).__name__}") from exc
        return decode_result(response.content, response.status_code)

    async def aclose(self) -> None:
        """Close both clients."""
        await self._send.aclose()
        await self.reset_poller()
