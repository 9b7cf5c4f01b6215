"""The provider path's own HTTP/1.1 client (`oxydra.providers._h1`) against real loopback
servers that misbehave: stale keep-alive connections, stalls, cuts, garbage, compression
bombs, TLS with and without a trusted certificate, and headers that would leak a key."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import ssl
import subprocess
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oxydra.core.errors import ProviderTransportError
from oxydra.providers import _h1
from oxydra.providers._h1 import H1Client, HttpError, HttpTimeout, HttpUrlError, Target
from oxydra.providers._http import HttpEndpoint
from oxydra.providers._httpx import HttpxTransport
from tests.providers._loopback import Server, ok, read_all, read_request
from tests.providers.conftest import ProviderFactory, context


@pytest.fixture
async def client() -> AsyncIterator[H1Client]:
    made = H1Client(timeout=5.0, connect_timeout=5.0)
    yield made
    await made.aclose()


async def _get(client: H1Client, url: str) -> tuple[int, bytes]:
    response = await client.send("GET", url, {})
    try:
        return response.status_code, await read_all(response)
    finally:
        await response.aclose()


async def test_a_kept_alive_connection_carries_the_next_request(client: H1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            server.requests.append(await read_request(reader))
            writer.write(ok(b"{}"))

    async with Server(handler) as server:
        for _ in range(3):
            assert await _get(client, server.url + "/v1/models") == (200, b"{}")
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /v1/models HTTP/1.1\r\n")


async def test_a_connection_the_server_closed_while_idle_is_replaced(client: H1Client) -> None:
    """The server answers once per connection but says nothing of closing: the second request
    finds its pooled connection dead and goes out again on a new one."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(b"one"))
        await writer.drain()

    async with Server(handler) as server:
        assert await _get(client, server.url) == (200, b"one")
        await asyncio.sleep(0.05)  # the close reaches the idle connection
        assert await _get(client, server.url) == (200, b"one")
    assert server.connections == 2


async def test_a_reused_connection_that_breaks_before_answering_is_retried_once(
    client: H1Client,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(b"first"))
        await writer.drain()
        await read_request(reader)  # the second request is read, then dropped unanswered
        writer.transport.abort()

    async with Server(handler) as server:
        assert await _get(client, server.url) == (200, b"first")
        assert await _get(client, server.url) == (200, b"first")
    assert server.connections == 2


async def test_a_stalled_response_times_out(client: H1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await asyncio.sleep(30)

    async with Server(handler) as server:
        response = await client.send("GET", server.url, {}, timeout=0.3)
        chunks = []
        with pytest.raises(HttpTimeout, match=r"no data for 0\.3 s"):
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
        await response.aclose()
    assert chunks == [b"hello"]


async def test_a_server_that_never_answers_times_out(client: H1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async with Server(handler) as server:
        with pytest.raises(HttpTimeout):
            await client.send("GET", server.url, {}, timeout=0.3)


async def test_a_body_cut_short_is_an_error_not_an_end(client: H1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
        await writer.drain()

    async with Server(handler) as server:
        response = await client.send("GET", server.url, {})
        with pytest.raises(HttpError):
            await read_all(response)
        await response.aclose()


async def test_garbage_instead_of_http_is_a_clear_error(client: H1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()

    async with Server(handler) as server:
        with pytest.raises(HttpError, match="malformed response"):
            await client.send("GET", server.url, {})


async def test_headers_past_the_limit_are_refused(client: H1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n" + b"x-pad: " + b"a" * 200_000 + b"\r\n\r\n")
        await writer.drain()

    async with Server(handler) as server:
        with pytest.raises(HttpError, match="malformed response"):
            await client.send("GET", server.url, {})


async def test_nothing_listening_is_a_connect_error(client: H1Client) -> None:
    async with Server(lambda r, w: asyncio.sleep(0)) as server:
        url = server.url
    with pytest.raises(HttpError, match="cannot connect"):
        await client.send("GET", url, {})


async def test_a_gzip_bomb_inflates_in_bounded_steps(client: H1Client) -> None:
    """64 MiB of zeros in ~64 KiB of gzip: each piece handed out is at most 1 MiB."""
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(bomb, "content-encoding: gzip"))
        await writer.drain()

    async with Server(handler) as server:
        response = await client.send("GET", server.url, {})
        total, largest = 0, 0
        async for piece in response.aiter_bytes():
            total += len(piece)
            largest = max(largest, len(piece))
        await response.aclose()
    assert total == 64 * 1024 * 1024
    assert largest <= _h1.INFLATE_STEP


async def test_raw_and_wrapped_deflate_both_decode(client: H1Client) -> None:
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    bodies = [zlib.compress(b"wrapped"), raw.compress(b"raw") + raw.flush()]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for body in bodies:
            await read_request(reader)
            writer.write(ok(body, "content-encoding: deflate"))

    async with Server(handler) as server:
        assert await _get(client, server.url) == (200, b"wrapped")
        assert await _get(client, server.url) == (200, b"raw")


async def test_a_corrupt_compressed_body_is_an_error(client: H1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(b"\x1f\x8b\x08\x00not gzip at all", "content-encoding: gzip"))

    async with Server(handler) as server:
        with pytest.raises(HttpError, match="corrupt"):
            await _get(client, server.url)


async def test_a_cancelled_read_does_not_pool_the_connection(client: H1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n")
            await asyncio.sleep(30)

    async with Server(handler) as server:
        response = await client.send("GET", server.url, {})

        async def read_all() -> None:
            async for _ in response.aiter_raw():
                pass

        task = asyncio.create_task(read_all())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await response.aclose()
        assert not client._idle.get(Target(server.url).origin)


async def test_ipv6_loopback_and_the_host_header(client: H1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.requests.append(await read_request(reader))
        writer.write(ok(b"v6"))

    try:
        server = Server(handler, host="::1")
        await server.__aenter__()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = server.url.rsplit(":", 1)[1]
    try:
        assert await _get(client, server.url + "/x?a=1") == (200, b"v6")
    finally:
        await server.__aexit__()
    assert b"\r\nhost: [::1]:" + port.encode() + b"\r\n" in server.requests[0]
    assert server.requests[0].startswith(b"GET /x?a=1 HTTP/1.1")


def test_urls_are_parsed_strictly() -> None:
    target = Target("https://user:p%40ss@Example.COM/v1/chat?x=1", {"key": "a b"})
    assert target.origin == ("https", "example.com", 443)
    assert target.host_header == "example.com"
    assert target.target == "/v1/chat?x=1&key=a+b"
    assert target.auth == "Basic dXNlcjpwQHNz"  # user:p@ss
    assert Target("http://bücher.example:8080").host_header == "xn--bcher-kva.example:8080"
    for bad in ("ftp://host/x", "http:///path", "http://host:99999/", "file:///etc/passwd"):
        with pytest.raises(HttpUrlError):
            Target(bad)


async def test_a_key_with_a_newline_is_never_sent_nor_shown(
    make_provider: ProviderFactory,
) -> None:
    """A header value with CR/LF would split the request (header injection); the error names
    the header, never its value."""
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(65536))

    async with Server(handler) as server:
        provider = make_provider(
            "openai", server.url, extra_headers={"x-team": "sk-SECRET\r\nx-evil: 1"}
        )
        with pytest.raises(ProviderTransportError) as caught:
            await provider.complete(context())
    assert "SECRET" not in str(caught.value)
    assert "x-team" in str(caught.value)
    assert seen == [] or all(b"x-evil" not in chunk for chunk in seen)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_is_verified_against_the_configured_bundle(
    certificate: tuple[Path, Path], client: H1Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(b"secure"))
        await writer.drain()

    async with Server(handler, tls=tls) as server:
        monkeypatch.setattr(_h1, "_TLS", [])  # certifi's bundle: our certificate is unknown
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        with pytest.raises(HttpError, match=r"TLS failed.*CERTIFICATE_VERIFY_FAILED"):
            await client.send("GET", server.url, {})
        monkeypatch.setattr(_h1, "_TLS", [])
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert await _get(client, server.url) == (200, b"secure")
    monkeypatch.setattr(_h1, "_TLS", [])


def test_a_proxy_in_the_environment_goes_through_httpx() -> None:
    def endpoint(environ: dict[str, str]) -> HttpEndpoint:
        base = "https://api.example"
        return HttpEndpoint(provider="p", base_url=base, headers={}, environ=environ)

    assert isinstance(endpoint({}).transport, H1Client)
    assert isinstance(endpoint({"HTTPS_PROXY": "http://proxy:3128"}).transport, HttpxTransport)
    assert isinstance(endpoint({"all_proxy": "socks5://p:1080"}).transport, HttpxTransport)
    assert isinstance(endpoint({"HTTP_PROXY": ""}).transport, H1Client)
