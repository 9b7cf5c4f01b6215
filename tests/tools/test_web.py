"""web_fetch and web_search against a real loopback HTTP server, through the SSRF guard."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib
from typing import Any

import msgspec
import pytest

from oxydra.config.schema import WebSearchConfig
from oxydra.core.errors import ToolError
from oxydra.security import EgressClient, FetchResponse, SsrfGuard
from oxydra.tools import (
    ToolExecutionContext,
    ToolRegistry,
    html_to_text,
    web_fetch_tool,
    web_search_tool,
)
from tests.security.cases_ssrf import StubResolver
from tests.support.net import LoopbackHTTPServer, LoopbackOnlyConnector, Reply

PAGE = b"""<html><head><title>Test  Page</title><style>.x{}</style></head>
<body><h1>Hello</h1><p>First <b>para</b>
graph.</p><script>alert(1)</script><ul><li>one</li><li>two</li></ul>
<a href="/next">Next page</a></body></html>"""


def client(allow: bool = True) -> EgressClient:
    guard = SsrfGuard(resolver=StubResolver(), allowlist=["127.0.0.1"] if allow else [])
    return EgressClient(guard, connector=LoopbackOnlyConnector(), timeout=5)


def registry(*tools: Any) -> ToolRegistry:
    reg = ToolRegistry()
    reg.register_all(tools)
    return reg


class TestWebFetch:
    async def test_html_becomes_readable_text(self, ctx: ToolExecutionContext) -> None:
        html = Reply(200, PAGE, {"content-type": "text/html; charset=utf-8"})
        async with LoopbackHTTPServer({"/p": html}) as srv:
            result = await registry(web_fetch_tool(client())).execute(
                "web_fetch", {"url": srv.url("/p")}, ctx
            )
        out = json.loads(result.text)
        assert (out["mode"], out["title"], out["status"]) == ("text", "Test Page", 200)
        assert "# Hello" in out["body"] and "- one" in out["body"] and "alert" not in out["body"]
        assert f"[Next page](http://127.0.0.1:{srv.port}/next)" in out["body"]

    async def test_json_is_returned_raw(self, ctx: ToolExecutionContext) -> None:
        async with LoopbackHTTPServer(
            {"/j": Reply(200, b'{"a": 1}', {"content-type": "application/json"})}
        ) as srv:
            out = json.loads(
                (
                    await registry(web_fetch_tool(client())).execute(
                        "web_fetch", {"url": srv.url("/j")}, ctx
                    )
                ).text
            )
        assert (out["mode"], out["body"]) == ("raw", '{"a": 1}')

    async def test_binary_gives_metadata_only(self, ctx: ToolExecutionContext) -> None:
        async with LoopbackHTTPServer(
            {"/b": Reply(200, b"\x89PNG\x00\x01", {"content-type": "image/png"})}
        ) as srv:
            out = json.loads(
                (
                    await registry(web_fetch_tool(client())).execute(
                        "web_fetch", {"url": srv.url("/b")}, ctx
                    )
                ).text
            )
        assert (out["mode"], out["body"], out["content_length"]) == ("metadata_only", "", 6)

    async def test_long_body_is_cut_and_flagged(self, ctx: ToolExecutionContext) -> None:
        async with LoopbackHTTPServer(
            {"/l": Reply(200, b"a" * 5000, {"content-type": "text/plain"})}
        ) as srv:
            fetch = web_fetch_tool(client(), max_chars=1000)
            out = json.loads(
                (await registry(fetch).execute("web_fetch", {"url": srv.url("/l")}, ctx)).text
            )
        assert out["truncated"] and out["body"].endswith("[truncated]") and len(out["body"]) < 1100

    async def test_error_status_is_a_failure_with_a_preview(
        self, ctx: ToolExecutionContext
    ) -> None:
        async with LoopbackHTTPServer({"/e": Reply(503, b"x" * 1000)}) as srv:
            result = await registry(web_fetch_tool(client())).execute(
                "web_fetch", {"url": srv.url("/e")}, ctx
            )
        assert (
            result.error_kind == "failed"
            and "HTTP 503" in result.text
            and "x" * 257 not in result.text
        )

    async def test_loopback_is_refused_without_the_allowlist(
        self, ctx: ToolExecutionContext
    ) -> None:
        async with LoopbackHTTPServer({"/p": Reply(200, b"secret")}) as srv:
            result = await registry(web_fetch_tool(client(allow=False))).execute(
                "web_fetch", {"url": srv.url("/p")}, ctx
            )
        assert result.error_kind == "policy" and srv.seen == []

    async def test_redirect_to_metadata_is_refused(self, ctx: ToolExecutionContext) -> None:
        hop = Reply(302, headers={"location": "http://169.254.169.254/latest/meta-data/"})
        async with LoopbackHTTPServer({"/r": hop}) as srv:
            result = await registry(web_fetch_tool(client())).execute(
                "web_fetch", {"url": srv.url("/r")}, ctx
            )
        assert result.error_kind == "policy" and "metadata" in result.text

    async def test_page_echoing_a_secret_is_scrubbed(self, ctx: ToolExecutionContext) -> None:
        token = "ghp_" + "Ab1" * 12
        async with LoopbackHTTPServer({"/s": Reply(200, f"your token is {token}".encode())}) as srv:
            result = await registry(web_fetch_tool(client())).execute(
                "web_fetch", {"url": srv.url("/s")}, ctx
            )
        assert token not in result.text and "ghp_\u2026[REDACTED]" in result.text


def ddg_body() -> bytes:
    return json.dumps({
        "Heading": "Python", "AbstractText": "A language.", "AbstractURL": "https://python.org/",
        "RelatedTopics": [
            {"Text": "PyPI - the package index", "FirstURL": "https://pypi.org/"},
            {"Name": "More", "Topics": [{"Text": "PEP 8 - style", "FirstURL": "https://peps.python.org/pep-0008/"}]},
        ],
    }).encode()  # fmt: skip


SEARX_HTML = b"""<html><body>
<article class="result result-default"><h3><a href="https://a.example/x">Alpha &amp; co</a></h3>
<p class="content">first   snippet</p></article>
<article class="result"><h3><a href="https://b.example/">Beta</a></h3>
<p class="content">second</p></article>
</body></html>"""


async def search(
    ctx: ToolExecutionContext,
    config: WebSearchConfig,
    environ: dict[str, str] | None = None,
    **args: Any,
) -> Any:
    reg = registry(web_search_tool(client(), config, environ or {}))
    result = await reg.execute("web_search", {"query": "python", **args}, ctx)
    return result, (json.loads(result.text) if result.ok else None)


class TestWebSearch:
    async def test_duckduckgo_instant_answers(self, ctx: ToolExecutionContext) -> None:
        async with LoopbackHTTPServer(
            {"/": Reply(200, ddg_body(), {"content-type": "application/json"})}
        ) as srv:
            _, out = await search(ctx, WebSearchConfig(base_url=srv.url("/")), count=2)
        assert out["provider"] == "duckduckgo" and out["result_count"] == 2
        assert [r["url"] for r in out["results"]] == ["https://python.org/", "https://pypi.org/"]
        params = dict(p.split("=") for p in srv.seen[0].target.split("?")[1].split("&"))
        assert (
            params["format"] == "json" and params["t"] == "oxydra" and params["no_redirect"] == "1"
        )

    async def test_google_needs_key_and_engine_and_sends_freshness(
        self, ctx: ToolExecutionContext
    ) -> None:
        body = json.dumps(
            {
                "items": [
                    {
                        "title": "T",
                        "link": "https://t.example/",
                        "snippet": "s",
                        "displayLink": "t.example",
                    }
                ]
            }
        )
        config = WebSearchConfig(provider="google", api_key_env="G_KEY", engine_id_env="G_CX")
        async with LoopbackHTTPServer({"/cse": Reply(200, body.encode())}) as srv:
            config = msgspec.structs.replace(config, base_url=srv.url("/cse"))
            _, out = await search(
                ctx, config, {"G_KEY": "k-abcdefgh12345", "G_CX": "cx1"}, freshness="week"
            )
            missing, _ = await search(ctx, config, {})
        assert out["results"][0]["display_url"] == "t.example"
        assert "sort=date%3Ar%3A7d" in srv.seen[0].target and "cx=cx1" in srv.seen[0].target
        assert not missing.ok and "api_key_env" in missing.text

    async def test_searxng_json_with_options(self, ctx: ToolExecutionContext) -> None:
        body = json.dumps(
            {"results": [{"title": "R", "url": "https://r.example/p", "content": "c" * 3000}]}
        )
        async with LoopbackHTTPServer(
            {"/search": Reply(200, body.encode(), {"content-type": "application/json"})}
        ) as srv:
            config = WebSearchConfig(
                provider="searxng",
                base_url=srv.url("/"),
                engines="ddg",
                safesearch=1,
                query_params="lang=en",
            )
            _, out = await search(ctx, config, freshness="day")
        target = srv.seen[0].target
        assert all(
            p in target for p in ("engines=ddg", "safesearch=1", "time_range=day", "lang=en")
        )
        assert (
            len(out["results"][0]["snippet"]) == 2000
            and out["results"][0]["display_url"] == "r.example"
        )

    async def test_searxng_html_fallback(self, ctx: ToolExecutionContext) -> None:
        async with LoopbackHTTPServer(
            {"/search": Reply(200, SEARX_HTML, {"content-type": "text/html"})}
        ) as srv:
            _, out = await search(ctx, WebSearchConfig(provider="searxng", base_url=srv.url("/")))
        assert [(r["title"], r["url"], r["snippet"]) for r in out["results"]] == [
            ("Alpha & co", "https://a.example/x", "first snippet"),
            ("Beta", "https://b.example/", "second"),
        ]

    async def test_next_base_url_is_tried_when_one_fails(self, ctx: ToolExecutionContext) -> None:
        body = json.dumps({"results": [{"title": "ok", "url": "https://ok.example/"}]}).encode()
        async with LoopbackHTTPServer(
            {"/a/search": Reply(500, b"down"), "/b/search": Reply(200, body)}
        ) as srv:
            config = WebSearchConfig(
                provider="searxng", base_urls=f"{srv.url('/a')}, {srv.url('/b')}"
            )
            _, out = await search(ctx, config)
        assert out["base_url"] == srv.url("/b") and out["results"][0]["title"] == "ok"

    async def test_search_base_url_goes_through_the_ssrf_guard(
        self, ctx: ToolExecutionContext
    ) -> None:
        config = WebSearchConfig(provider="searxng", base_url="http://169.254.169.254/")
        result, _ = await search(ctx, config)
        assert not result.ok and "metadata" in result.text


def test_html_to_text_handles_tables_and_pre() -> None:
    text, title = html_to_text("<table><tr><td>a</td><td>b</td></tr></table><pre>x  y</pre>")
    assert "| a | b" in text and "x  y" in text and title == ""


@pytest.mark.parametrize(
    "piece", ["<!", "<a", "</", "<!--", "<?", "<![", '<a href="x', "<a>", "<script>", "&#"]
)
def test_hostile_html_is_converted_in_bounded_work(piece: str) -> None:
    # Each of these drove html.parser quadratic (or made it raise); ours stops within a token
    # budget, so a 5 MB page costs a bounded amount of work whatever its shape.
    page = piece * 2_000_000
    text, _ = html_to_text(page, max_tokens=1000)
    assert "[page cut: more than 1000 HTML tokens]" in text or len(text) <= len(page)


def test_well_formed_html_keeps_its_structure() -> None:
    page = (
        "<html><head><title>T &amp; x</title><style>p{}</style></head><body><h1>Hi</h1>"
        '<p>a <a href="/x">link</a> &lt;b&gt;</p><script>var a = "<p>";</script>'
        "<ul><li>one<li>two</ul></body></html>"
    )
    text, title = html_to_text(page, "https://e.com/")
    assert title == "T & x"
    assert text == "# Hi\n\na [link](https://e.com/x) <b>\n\n- one\n- two"


def _bomb(layers: int, size: int) -> bytes:
    body = b"\0" * size
    for _ in range(layers):
        body = gzip.compress(body, compresslevel=9)
    return body


async def _fetch_measured(reply: Reply) -> tuple[FetchResponse | str, int]:
    """What `web_fetch` reads (or the error it reports) and the peak Python memory meanwhile."""
    async with LoopbackHTTPServer({"/b": reply}) as srv:
        tracemalloc.start()
        try:
            response: FetchResponse | str = await client().fetch(srv.url("/b"))
        except ToolError as exc:
            response = str(exc)
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    return response, peak


class TestDecompressionBombs:
    """Bodies that inflate to hundreds of MiB; the fetch keeps 5 MiB and never holds more."""

    PEAK_CEILING = 48 << 20  # 5 MiB kept, its copies in the result, one step per layer

    async def test_one_gzip_layer_is_inflated_only_up_to_the_cap(self) -> None:
        bomb = _bomb(1, 200 << 20)
        reply = Reply(200, bomb, {"content-encoding": "gzip", "content-type": "text/plain"})
        out, peak = await _fetch_measured(reply)
        assert isinstance(out, FetchResponse) and out.truncated and len(out.content) == 5 << 20
        assert peak < self.PEAK_CEILING, f"peak {peak >> 20} MiB"

    async def test_stacked_gzip_of_a_few_hundred_bytes_stays_bounded(self) -> None:
        bomb = _bomb(2, 300 << 20)
        assert len(bomb) < 1000
        headers = {"content-encoding": "gzip, gzip", "content-type": "text/plain"}
        out, peak = await _fetch_measured(Reply(200, bomb, headers))
        assert isinstance(out, FetchResponse) and out.truncated and len(out.content) == 5 << 20
        assert peak < self.PEAK_CEILING, f"peak {peak >> 20} MiB"

    async def test_more_stacked_encodings_than_allowed_are_refused(self) -> None:
        headers = {"content-encoding": "gzip, gzip, gzip"}
        out, _ = await _fetch_measured(Reply(200, _bomb(3, 1 << 20), headers))
        assert isinstance(out, str) and "3 stacked Content-Encodings" in out

    @pytest.mark.parametrize("coding", ["br", "zstd", "compress"])
    async def test_encodings_we_do_not_decode_are_refused(self, coding: str) -> None:
        out, _ = await _fetch_measured(Reply(200, b"\x1b\x00", {"content-encoding": coding}))
        assert isinstance(out, str) and f"unsupported Content-Encoding {coding}" in out

    @pytest.mark.parametrize(
        ("coding", "encode"),
        [
            ("gzip", gzip.compress),
            ("deflate", zlib.compress),
            ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send
            ("gzip, deflate", lambda b: zlib.compress(gzip.compress(b))),
        ],
    )
    async def test_ordinary_compressed_pages_decode(
        self, ctx: ToolExecutionContext, coding: str, encode: Any
    ) -> None:
        text = b"hello compressed world " * 100
        headers = {"content-encoding": coding, "content-type": "text/plain"}
        async with LoopbackHTTPServer({"/p": Reply(200, encode(text), headers)}) as srv:
            result = await registry(web_fetch_tool(client())).execute(
                "web_fetch", {"url": srv.url("/p")}, ctx
            )
        assert json.loads(result.text)["body"].encode() == text

    async def test_the_request_advertises_only_what_we_decode(self) -> None:
        async with LoopbackHTTPServer({"/": Reply(200, b"x")}) as srv:
            await client().fetch(srv.url("/"))
        assert srv.seen[0].headers["accept-encoding"] == "gzip, deflate"
