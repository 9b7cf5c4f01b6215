"""web_fetch and web_search against a real loopback HTTP server, through the SSRF guard."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from oxydra.config.schema import WebSearchConfig
from oxydra.security import EgressClient, SsrfGuard
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
