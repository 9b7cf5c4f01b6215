"""HTTP transports: Streamable HTTP (2025-06-18 and later) and the legacy HTTP+SSE one.

Both run on an `httpx.AsyncClient` whose transport is `GuardedTransport`: every request is
vetted by the SSRF guard and pinned to the vetted address, so a server URL (or a legacy
`endpoint` event) naming a private address is refused unless the egress allow-list opens it.

Streamable HTTP, one POST per message:
1. `Accept: application/json, text/event-stream`; the answer is JSON, an SSE stream (decoded
   by `wire.sse.SSEDecoder`, each `data` one JSON-RPC message) or 202 for a notification.
2. The `Mcp-Session-Id` a server returns is sent back on every later request, with
   `MCP-Protocol-Version` once negotiated; in the stateless 2026-07-28 era each request also
   names its method (`Mcp-Method`) and tool (`Mcp-Name`), and cancelling a call closes its POST.
3. An HTTP error becomes a JSON-RPC error for the request that caused it (the body is read
   as JSON-RPC first: servers put their error there); 404 on a session means it expired.
4. After the handshake a GET opens the server's notification stream when it offers one (405
   means it does not); `close` sends DELETE to end the session.

Legacy HTTP+SSE: a GET stream whose first `endpoint` event names where to POST (same origin
only); every answer arrives on the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import httpx

from oxydra.core.errors import OxydraError, PolicyError, ToolError
from oxydra.core.log import get_logger
from oxydra.wire.mcp import ErrorResponse, Event, RpcError, decode_messages
from oxydra.wire.sse import SSEDecoder

_log = get_logger(__name__)
SESSION_EXPIRED = -32099
HTTP_ERROR = -32098
MAX_BODY = 8 * 1024 * 1024
_ACCEPT = "application/json, text/event-stream"


class _Base:
    def __init__(
        self,
        url: str,
        *,
        name: str,
        client: httpx.AsyncClient,
        headers: Mapping[str, str],
        on_event: Callable[[Event], None],
        on_close: Callable[[str], None],
    ) -> None:
        self.url = url
        self.name = name
        self._client = client
        self._headers = dict(headers)
        self._on_event = on_event
        self._on_close = on_close
        self._tasks: dict[int | str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()

    def _spawn(self, work: Coroutine[Any, Any, None], request_id: int | str | None) -> None:
        task = asyncio.ensure_future(work)
        if request_id is not None:
            self._tasks[request_id] = task
        self._background.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._background.discard(t)
            if request_id is not None and self._tasks.get(request_id) is t:
                del self._tasks[request_id]

        task.add_done_callback(done)

    def negotiated(self, version: str | None, *, modern: bool) -> None:
        """Headers to send from now on (`MCP-Protocol-Version`, the stateless era's extras)."""
        self.protocol_version = version
        self.modern = modern
        if version is None:
            self.session_id = None  # a failed probe's session, if the server made one

    protocol_version: str | None = None
    session_id: str | None = None
    modern = False

    async def abort(self, request_id: int | str) -> None:
        """Close the HTTP exchange of one request (the stateless era's cancellation)."""
        task = self._tasks.pop(request_id, None)
        if task is not None and not task.done():
            task.cancel()

    def _fail(self, request_id: int | str | None, code: int, message: str) -> None:
        if request_id is not None:
            self._on_event(ErrorResponse(id=request_id, error=RpcError(code=code, message=message)))

    async def _read_sse(self, response: httpx.Response) -> None:
        decoder = SSEDecoder(max_event_bytes=MAX_BODY)
        async for chunk in response.aiter_bytes():
            for event in decoder.feed(chunk):
                self._dispatch(event.event, event.data)
        for event in decoder.feed_eof():
            self._dispatch(event.event, event.data)

    def _dispatch(self, kind: str, data: str) -> None:
        if kind == "message" and data.strip():
            for message in decode_messages(data):
                self._on_event(message)

    async def _cancel_all(self) -> None:
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class StreamableHttpTransport(_Base):
    """Streamable HTTP: see the module docstring."""

    async def send(
        self,
        data: bytes,
        *,
        request_id: int | str | None = None,
        method: str = "",
        tool: str | None = None,
    ) -> None:
        """POST one message; its answer is delivered through `on_event` by a task."""
        if self.modern and method == "notifications/cancelled":
            return  # the stateless HTTP wire cancels by closing the request's stream (abort)
        headers = {**self._headers, "Accept": _ACCEPT, "Content-Type": "application/json"}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        if self.modern:
            headers["Mcp-Method"] = method
            if tool is not None:
                headers["Mcp-Name"] = tool
        self._spawn(self._post(data, headers, request_id), request_id)

    async def _post(
        self, data: bytes, headers: dict[str, str], request_id: int | str | None
    ) -> None:
        try:
            async with self._client.stream("POST", self.url, content=data, headers=headers) as r:
                sid = r.headers.get("mcp-session-id")
                if sid and r.is_success and not self.session_id:
                    self.session_id = sid
                await self._answer(r, request_id)
        except (httpx.HTTPError, OxydraError) as exc:
            self._fail(request_id, HTTP_ERROR, _describe(self.url, exc))

    async def _answer(self, response: httpx.Response, request_id: int | str | None) -> None:
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if response.status_code == 202 or (request_id is None and response.is_success):
            return
        if kind == "text/event-stream" and response.is_success:
            await self._read_sse(response)
            return
        body = await _read_capped(response)
        events = decode_messages(body) if kind == "application/json" and body.strip() else []
        ours = [e for e in events if getattr(e, "id", None) == request_id]
        for event in events:
            self._on_event(event)
        if ours or request_id is None:
            return
        if response.status_code == 404 and self.session_id:
            self._fail(request_id, SESSION_EXPIRED, "the server ended the MCP session (404)")
            return
        errors = [e.error.message for e in events if isinstance(e, ErrorResponse)]
        detail = errors[0] if errors else body[:200].decode("utf-8", "replace")
        self._fail(request_id, HTTP_ERROR, f"HTTP {response.status_code}: {detail}")

    async def listen(self) -> None:
        """Open the server's GET notification stream, when it offers one."""
        self._spawn(self._get_stream(), None)

    async def _get_stream(self) -> None:
        headers = {**self._headers, "Accept": "text/event-stream"}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        with contextlib.suppress(httpx.HTTPError, OxydraError):
            async with self._client.stream("GET", self.url, headers=headers) as response:
                kind = response.headers.get("content-type", "")
                if response.is_success and kind.startswith("text/event-stream"):
                    await self._read_sse(response)

    async def close(self) -> None:
        """End the session (DELETE) and stop every exchange."""
        await self._cancel_all()
        if self.session_id:
            headers = {**self._headers, "Mcp-Session-Id": self.session_id}
            with contextlib.suppress(httpx.HTTPError, OxydraError, TimeoutError):
                async with asyncio.timeout(2):
                    await self._client.delete(self.url, headers=headers)
        await self._client.aclose()


class LegacySseTransport(_Base):
    """HTTP+SSE (2024-11-05): see the module docstring."""

    endpoint: str | None = None

    async def open(self, timeout: float) -> None:
        """Start the GET stream and wait for its `endpoint` event."""
        ready = asyncio.Event()
        self._spawn(self._stream(ready), None)
        async with asyncio.timeout(timeout):
            await ready.wait()
        if self.endpoint is None:
            raise ToolError(f"MCP server '{self.name}' sent no endpoint event")

    async def _stream(self, ready: asyncio.Event) -> None:
        reason = "the event stream ended"
        headers = {**self._headers, "Accept": "text/event-stream"}
        try:
            async with self._client.stream("GET", self.url, headers=headers) as response:
                if not response.is_success:
                    reason = f"GET {self.url} answered HTTP {response.status_code}"
                    return
                decoder = SSEDecoder(max_event_bytes=MAX_BODY)
                async for chunk in response.aiter_bytes():
                    for event in decoder.feed(chunk):
                        if event.event == "endpoint":
                            self.endpoint = self._endpoint(event.data)
                            ready.set()
                        else:
                            self._dispatch(event.event, event.data)
        except (httpx.HTTPError, OxydraError) as exc:
            reason = _describe(self.url, exc)
        finally:
            ready.set()
            self._on_close(reason)

    def _endpoint(self, data: str) -> str:
        base = httpx.URL(self.url)
        target = base.join(data.strip())
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise PolicyError(f"MCP server '{self.name}' named an endpoint on another origin")
        return str(target)

    async def send(self, data: bytes, *, request_id: int | str | None = None, **_: object) -> None:
        """POST one message to the endpoint; the answer comes on the stream."""
        if self.modern:
            self._fail(request_id, -32601, "the legacy SSE transport has no server/discover")
            return
        self._spawn(self._post(data, request_id), None)

    async def _post(self, data: bytes, request_id: int | str | None) -> None:
        assert self.endpoint is not None
        headers = {**self._headers, "Content-Type": "application/json"}
        try:
            response = await self._client.post(self.endpoint, content=data, headers=headers)
        except (httpx.HTTPError, OxydraError) as exc:
            self._fail(request_id, HTTP_ERROR, _describe(self.endpoint, exc))
            return
        if not response.is_success:
            self._fail(request_id, HTTP_ERROR, f"HTTP {response.status_code}")

    async def close(self) -> None:
        """Stop the stream and the client."""
        await self._cancel_all()
        await self._client.aclose()


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            raise ToolError(f"an MCP answer exceeded {MAX_BODY} bytes")
    return b"".join(chunks)


def _describe(url: str, exc: Exception) -> str:
    if isinstance(exc, OxydraError):
        return str(exc)
    return f"{url}: {type(exc).__name__}: {exc}"
