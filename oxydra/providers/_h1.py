"""A small HTTP/1.1 client for the provider path: asyncio streams, h11 framing, a keep-alive pool.

Why not httpx here: a one-shot turn spent ~60 ms of CPU on httpx (importing it, building an
`AsyncClient`, and httpcore's pool loading anyio's asyncio backend for its locks), a third of
the whole turn, and each streamed chunk went through seven generator layers. The provider path
needs one POST and one GET shape, so this client does only that: h11 (httpcore's own parser)
frames the messages, asyncio carries the bytes. `HttpEndpoint` falls back to httpx when a
proxy is configured in the environment or a client is handed in (`http_client=`).

Rules:
1. One request at a time per connection. A connection goes back to the pool only when its
   exchange ended cleanly: the response read to the end, both sides may go on (h11's
   `start_next_cycle`), no byte left over on either side (a 204 with a body, bytes after the
   chunks, an unsent request body), and its framing trustworthy (not both Content-Length and
   Transfer-Encoding: RFC 9112 6.3 reads the chunks, and the connection is not reused). An
   idle connection is closed by its own timer after `KEEPALIVE_SECS` (below the 5 s of
   uvicorn, Node and llama.cpp's server, so they do not close it as it is reused), or a second
   before the `Keep-Alive: timeout=N` the server announced when that is sooner, and is not
   reused when the server closed it or sent anything unasked. At most `MAX_IDLE_PER_ORIGIN`
   wait per origin.
2. A reused connection that fails before any response byte (the server closed it as we sent)
   is retried once on a new connection, for an idempotent method only: a POST the server took
   and then dropped may have been acted on (an LLM call is billed), so whether to send it
   again is `ReliableProvider`'s call (`max_attempts`). Nothing else is retried here.
3. Connect and the TLS handshake are bounded by `connect_timeout`; sending and each read of
   the response by `timeout`, through one timer per connection that is moved only when it
   fires (a timer per read cost more than parsing the chunk). The timeout bounds each read,
   not the response: a server that trickles a byte at a time keeps the call alive, and what
   bounds a whole call is the caller (`ReliableProvider`'s `attempt_timeout`, the turn).
4. Errors are `HttpError` (`HttpTimeout`, `HttpUrlError`), whose messages never carry a
   header's value: an API key with a stray newline must not end up in a log.
5. A compressed body (`gzip`, `deflate`) is inflated in steps of at most `INFLATE_STEP` bytes,
   each handed out before the next is made, so a small hostile body cannot make one huge
   allocation, and a reader that stops early stops the inflating.
6. The response head is bounded: `MAX_HEAD_BYTES` (whether it comes in one read or many),
   `MAX_HEADER_LINES`, and at most `MAX_INFORMATIONAL` 1xx responses before it (each would
   otherwise restart the read timeout forever). A body larger than the socket takes at once
   is sent while the head is awaited, so an early answer (a proxy's 413 after the request's
   head) is returned rather than lost to a blocked send or the reset that follows.
7. Nothing the server says sends the client elsewhere or is remembered: redirects are
   returned as they are, cookies are not kept.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlencode, urlsplit

from oxydra import __version__
from oxydra._lazy import LazyModule

if TYPE_CHECKING:
    import h11
else:
    h11 = LazyModule("h11")  # loaded by the first request, not by an idle server (0.5 MiB)

KEEPALIVE_SECS = 4.0
MAX_IDLE_PER_ORIGIN = 8
READ_SIZE = 64 * 1024
INFLATE_STEP = 1024 * 1024
MAX_HEAD_BYTES = 16 * 1024  # h11's own default for an incomplete head
MAX_HEADER_LINES = 100  # as `http.client` (and so urllib3, requests)
MAX_INFORMATIONAL = 10
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})  # RFC 9110 9.2.2
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~"  # kept as they are in a request target
USER_AGENT = f"oxydra/{__version__}"
Origin = tuple[str, str, int]


class HttpError(Exception):
    """The request could not be sent or its response not read."""


class HttpTimeout(HttpError):
    """Connecting, sending or a read took longer than allowed."""


class HttpUrlError(HttpError):
    """The URL cannot be requested (scheme, host, port)."""


def _tls_context() -> ssl.SSLContext:
    """Verifying TLS: `SSL_CERT_FILE`/`SSL_CERT_DIR` when set, else certifi's bundle."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        try:
            import certifi

            cafile = certifi.where()
        except ImportError:  # the system's store then
            pass
    context = ssl.create_default_context(cafile=cafile, capath=capath)
    context.set_alpn_protocols(["http/1.1"])
    return context


_TLS: list[ssl.SSLContext] = []  # built once per process, at the first https request


async def tls_context() -> ssl.SSLContext:
    """The process's verifying TLS context. Loading a CA bundle is ~20 ms of file reads and
    parsing: it runs in a thread, so the event loop (every other session) does not stall."""
    if not _TLS:
        context = await asyncio.to_thread(_tls_context)
        if not _TLS:  # another request may have made one meanwhile
            _TLS.append(context)
    return _TLS[0]


class Target:
    """A parsed request URL: where to connect and what to send on the request line."""

    __slots__ = ("auth", "host_header", "origin", "target")

    def __init__(self, url: str, params: Mapping[str, str] | None = None) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
            host = parts.hostname or ""
        except ValueError as exc:
            raise HttpUrlError(f"invalid URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise HttpUrlError(f"unsupported URL scheme {parts.scheme!r} (http or https)")
        if not host:
            raise HttpUrlError("the URL has no host")
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise HttpUrlError("the URL's host is not a valid domain name") from None
        default = 443 if scheme == "https" else 80
        if port == 0:
            raise HttpUrlError("the URL's port is 0")
        port = port or default
        shown = f"[{host}]" if ":" in host else host
        self.origin: Origin = (scheme, host, port)
        self.host_header = shown if port == default else f"{shown}:{port}"
        query = parts.query
        if params:
            query = f"{query}&{urlencode(params)}" if query else urlencode(params)
        # spaces, controls and non-ASCII are percent-encoded (UTF-8); `%` is kept, so a
        # quoted URL is not quoted twice
        target = (parts.path or "/") + (f"?{query}" if query else "")
        self.target = quote(target, safe=_TARGET_SAFE)
        self.auth = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.auth = "Basic " + base64.b64encode(pair.encode()).decode("ascii")


class _Conn:
    """One connection: its streams, its h11 state and its read watchdog (rule 3)."""

    __slots__ = (
        "_loop",
        "_since",
        "_timeout",
        "_waiting",
        "_watch",
        "h11",
        "idle_secs",
        "idle_since",
        "keep",
        "origin",
        "reader",
        "reused",
        "writer",
    )

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        origin: Origin,
        timeout: float,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        self.origin = origin
        self.idle_since = 0.0
        self.idle_secs = KEEPALIVE_SECS  # how long it may wait in the pool (rule 1)
        self.reused = False
        self.keep = True  # False once the response's framing cannot be trusted (rule 1)
        self._loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._since = 0.0
        self._waiting = False
        self._watch: asyncio.TimerHandle | None = None

    async def read(self) -> bytes:
        """The next bytes from the server (`b""` at its end), bounded by the read timeout."""
        self._since = since = self._loop.time()
        self._waiting = True
        if self._watch is None:
            self._watch = self._loop.call_at(since + self._timeout, self._check)
        try:
            return await self.reader.read(READ_SIZE)
        except HttpError:
            raise
        except OSError as exc:
            raise _Lost(_describe(exc)) from None
        finally:
            self._waiting = False

    def _check(self) -> None:
        self._watch = None
        if not self._waiting:
            return  # the next read arms it again
        due = self._since + self._timeout
        if self._loop.time() >= due:
            self.reader.set_exception(HttpTimeout(f"no data for {self._timeout:g} s (read)"))
        else:
            self._watch = self._loop.call_at(due, self._check)

    def usable(self, now: float) -> bool:
        """An idle connection may carry the next request: not expired, not closed, and nothing
        arrived unasked (it would be read as the next response)."""
        return (
            now - self.idle_since < self.idle_secs
            and not self.reader._buffer  # type: ignore[attr-defined]  # no public way to ask
            and not self.reader.at_eof()
            and self.reader.exception() is None
            and not self.writer.is_closing()
        )

    def reusable(self) -> bool:
        """The exchange ended cleanly, with nothing left over on either side (rule 1)."""
        machine = self.h11
        return (
            self.keep
            and machine.our_state is h11.DONE
            and machine.their_state is h11.DONE
            and machine.trailing_data == (b"", False)
            and not self.writer.transport.get_write_buffer_size()
        )

    def rearm(self, timer: asyncio.TimerHandle | None) -> None:
        """Replace the connection's timer: the read watchdog in use, the expiry while idle."""
        if self._watch is not None:
            self._watch.cancel()
        self._watch = timer

    def close(self) -> None:
        self.rearm(None)
        transport = self.writer.transport
        if transport.get_write_buffer_size():
            transport.abort()  # a server that stopped reading would hold the socket forever
        else:
            self.writer.close()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class H1Response:
    """A response whose body is read as it comes; close it (`aclose`) when done."""

    __slots__ = ("_client", "_conn", "headers", "status_code")

    def __init__(self, status: int, headers: dict[str, str], conn: _Conn, client: H1Client) -> None:
        self.status_code = status
        self.headers = headers
        self._conn: _Conn | None = conn
        self._client = client

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive, without content decoding."""
        conn = self._conn
        if conn is None:
            return
        machine = conn.h11
        data_type, end_type, need = h11.Data, h11.EndOfMessage, h11.NEED_DATA
        while True:
            try:
                event = machine.next_event()
            except h11.RemoteProtocolError as exc:
                raise HttpError(f"malformed response body: {exc}") from None
            kind = type(event)
            if kind is data_type:
                yield bytes(event.data)  # type: ignore[union-attr]
            elif event is need:
                machine.receive_data(await conn.read())
            elif kind is end_type:
                self._finish()
                return
            else:  # a closed connection: h11 reports it as ConnectionClosed
                raise HttpError("the server closed the connection before the body's end")

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's bytes, inflated when the server compressed them (rule 5)."""
        encoding = self.headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            inflater = None  # zlib-wrapped or raw: decided on the first bytes
        else:
            async for chunk in self.aiter_raw():
                yield chunk
            return
        chunks = self.aiter_raw()
        try:
            async for chunk in chunks:
                if inflater is None:
                    raw = chunk[:1] and (chunk[0] & 0x0F) != 8
                    inflater = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
                for piece in _inflate(inflater, chunk):
                    if piece:
                        yield piece
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]  # not left to the collector
        if inflater is not None and (tail := inflater.flush()):
            yield tail

    def _finish(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client.release(conn)

    async def aclose(self) -> None:
        """Give the connection back when the body was read whole; close it otherwise."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _inflate(inflater: zlib._Decompress, chunk: bytes) -> Iterator[bytes]:
    """The pieces `chunk` inflates to, each made only when the previous one was taken."""
    data = chunk
    while data:
        try:
            piece = inflater.decompress(data, INFLATE_STEP)
        except zlib.error as exc:
            raise HttpError(f"the compressed body is corrupt: {exc}") from None
        data = inflater.unconsumed_tail
        yield piece


class H1Client:
    """Keep-alive connections per origin (rule 1); one per `HttpEndpoint`.

    Args:
        timeout: seconds for sending and for each read.
        connect_timeout: seconds for the TCP connect and the TLS handshake.
    """

    def __init__(self, *, timeout: float, connect_timeout: float) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._idle: dict[Origin, list[_Conn]] = {}
        self._closed = False

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> H1Response:
        """Send a request; return once the response's status and headers are in."""
        target = Target(url, params)
        wait = self.timeout if timeout is None else timeout
        head = self._head(method, target, headers, body)
        conn = self._pooled(target.origin)
        if conn is not None:
            try:
                return await self._exchange(conn, head, body, wait)
            except _Stale as exc:
                if method not in _IDEMPOTENT:  # rule 2
                    raise HttpError(str(exc)) from None
        conn = await self._connect(target.origin, wait)
        return await self._exchange(conn, head, body, wait)

    def _head(
        self, method: str, target: Target, headers: Mapping[str, str], body: bytes
    ) -> h11.Request:
        lowered = {name.lower() for name in headers}
        lines = [] if "host" in lowered else [("host", target.host_header)]
        if "user-agent" not in lowered:
            lines.append(("user-agent", USER_AGENT))
        if "accept" not in lowered:
            lines.append(("accept", "*/*"))
        if "accept-encoding" not in lowered:
            lines.append(("accept-encoding", "gzip, deflate"))
        if target.auth is not None and "authorization" not in lowered:
            lines.append(("authorization", target.auth))
        lines += headers.items()
        if method != "GET" or body:
            lines.append(("content-length", str(len(body))))
        try:
            return h11.Request(method=method, target=target.target, headers=lines)
        except h11.LocalProtocolError:
            # h11's message quotes the value; a header may hold an API key (rule 4)
            names = [name for name, value in lines if not _clean(name) or not _clean(value)]
            shown = ", ".join(names) or "a name or value"
            raise HttpError(f"illegal characters in a request header ({shown})") from None

    def _pooled(self, origin: Origin) -> _Conn | None:
        idle = self._idle.get(origin)
        now = asyncio.get_running_loop().time()
        while idle:
            conn = idle.pop()
            if conn.usable(now):
                conn.rearm(None)  # its expiry
                conn.reused = True
                return conn
            conn.close()
        return None

    async def _connect(self, origin: Origin, timeout: float) -> _Conn:
        scheme, host, port = origin
        tls = await tls_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls else None,
                    happy_eyeballs_delay=0.25,
                    limit=READ_SIZE,
                )
        except TimeoutError:
            raise HttpTimeout(f"connecting took over {self.connect_timeout:g} s") from None
        except ssl.SSLError as exc:
            raise HttpError(f"TLS failed: {_describe(exc)}") from None
        except OSError as exc:
            raise HttpError(f"cannot connect: {_describe(exc)}") from None
        return _Conn(reader, writer, origin, timeout)

    async def _exchange(
        self, conn: _Conn, head: h11.Request, body: bytes, timeout: float
    ) -> H1Response:
        """Send the request on `conn` and read the response's head (rule 6)."""
        machine = conn.h11
        conn._timeout = timeout
        answered = False
        sending: asyncio.Future[None] | None = None
        informational = 0
        try:
            data = machine.send(head) or b""
            if body:
                data += machine.send(h11.Data(data=body)) or b""
            data += machine.send(h11.EndOfMessage()) or b""
            conn.writer.write(data)
            if conn.writer.transport.get_write_buffer_size():  # more than the socket took
                sending = asyncio.ensure_future(conn.writer.drain())
            while True:
                event = machine.next_event()
                if event is h11.NEED_DATA:
                    received = await conn.read()
                    if not received and conn.reused and not answered:
                        raise _Stale("the server closed an idle connection")
                    answered = True
                    machine.receive_data(received)
                elif type(event) is h11.Response:
                    break
                elif type(event) is h11.InformationalResponse:
                    informational += 1
                    if informational > MAX_INFORMATIONAL:
                        raise HttpError(
                            f"more than {MAX_INFORMATIONAL} informational (1xx) responses"
                        )
                else:  # ConnectionClosed: nothing else comes before a response
                    raise HttpError("the server closed the connection without answering")
            headers = _fields(event, conn)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, HttpTimeout) and sending is not None and not sending.done():
                raise HttpTimeout(f"sending took over {timeout:g} s") from None
            if isinstance(exc, h11.RemoteProtocolError):
                raise HttpError(f"malformed response: {exc}") from None
            stale = conn.reused and not answered
            if isinstance(exc, (OSError, _Lost)) and stale:
                raise _Stale(_describe(exc)) from None
            if isinstance(exc, OSError):
                raise HttpError(_describe(exc)) from None
            raise
        finally:
            if sending is not None:
                _forget(sending)
        return H1Response(event.status_code, headers, conn, self)

    def release(self, conn: _Conn) -> None:
        """Pool a connection whose exchange ended cleanly, with its expiry timer (rule 1)."""
        idle = [] if self._closed else self._idle.setdefault(conn.origin, [])
        conn.idle_secs = min(conn.idle_secs, KEEPALIVE_SECS)
        if (
            self._closed
            or len(idle) >= MAX_IDLE_PER_ORIGIN
            or conn.idle_secs <= 0
            or not conn.reusable()
        ):
            conn.close()
            return
        conn.h11.start_next_cycle()
        loop = asyncio.get_running_loop()
        conn.idle_since = now = loop.time()
        conn.rearm(loop.call_at(now + conn.idle_secs, self._expire, conn))
        idle.append(conn)

    def _expire(self, conn: _Conn) -> None:
        idle = self._idle.get(conn.origin, [])
        if conn in idle:
            idle.remove(conn)
        conn.close()

    async def aclose(self) -> None:
        """Close every pooled connection; one in use is closed when its response ends."""
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


def _fields(event: h11.Response, conn: _Conn) -> dict[str, str]:
    """The response's header fields, a repeated name's values joined with ", " (rule 6)."""
    if len(event.headers) > MAX_HEADER_LINES:
        raise HttpError(f"the response has more than {MAX_HEADER_LINES} header lines")
    size = len(event.reason) + 15  # the status line
    fields: dict[str, str] = {}
    for name, value in event.headers:
        size += len(name) + len(value) + 4
        key = name.decode("ascii")
        text = value.decode("latin-1")
        fields[key] = f"{fields[key]}, {text}" if key in fields else text
    if size > MAX_HEAD_BYTES:
        raise HttpError(f"the response head is over {MAX_HEAD_BYTES} bytes")
    if "transfer-encoding" in fields and "content-length" in fields:
        conn.keep = False  # RFC 9112 6.3: the chunks are read; a smuggling sign, so no reuse
    if "keep-alive" in fields:
        conn.idle_secs = _announced(fields["keep-alive"], conn.idle_secs)
    return fields


def _announced(keep_alive: str, default: float) -> float:
    """A second less than a `Keep-Alive: timeout=N, max=M` header's N (the server may close
    at N), else `default`."""
    for part in keep_alive.split(","):
        name, _, value = part.partition("=")
        if name.strip().lower() == "timeout" and value.strip().isdecimal():
            return min(default, int(value.strip()[:6]) - 1.0)
    return default


def _forget(sending: asyncio.Future[None]) -> None:
    """Stop waiting for a background send; its failure, if any, the reads have seen."""
    sending.cancel()
    sending.add_done_callback(lambda done: done.cancelled() or done.exception())


class _Lost(HttpError):
    """The connection broke while reading."""


class _Stale(Exception):
    """A reused connection failed before the response began (rule 2)."""


def _clean(text: str) -> bool:
    return not any(ch in text for ch in "\r\n\0")


__all__ = ["H1Client", "H1Response", "HttpError", "HttpTimeout", "HttpUrlError", "tls_context"]
