"""The page's Markdown renderer, run in the browser: structure kept, nothing executable made."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from oxydra.testing.cdp import Browser
from oxydra.web import Assets, WebFront
from tests.web.support import need_chromium

# One browser and page for the module: each case only renders a string and reads it back,
# and a browser start is about a second of CPU.
pytestmark = pytest.mark.asyncio(loop_scope="module")

Render = Callable[[str], Awaitable[str]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def render() -> AsyncIterator[Render]:
    """`render(markdown) -> innerHTML` through md.js, served by a real WebFront."""
    from websockets.asyncio.server import serve

    front = WebFront({"t": "u"}, ())

    async def handler(ws: object) -> None:
        return None  # only plain HTTP is asked of this server

    async with (
        await Browser.launch(need_chromium()) as browser,
        serve(handler, "127.0.0.1", 0, process_request=lambda c, r: front.respond(r, "")) as server,
    ):
        port = next(iter(server.sockets)).getsockname()[1]
        front.bind("127.0.0.1", port)
        await browser.goto(f"http://127.0.0.1:{port}/")
        url = Assets().url("md.js")

        async def run(source: str) -> str:
            expression = (
                f"import({json.dumps(url)}).then(m => {{ const d = document.createElement('div');"
                f" d.append(m.renderMarkdown({json.dumps(source)})); return d.innerHTML; }})"
            )
            html: str = await browser.evaluate(expression)
            return html

        yield run


HOSTILE = [
    "<script>window.x=1</script>",
    '<img src=x onerror="window.x=2">',
    "[a](javascript:window.x=3)",
    "[a](JaVaScRiPt:window.x=4)",
    "[a]( javascript:window.x=5)",
    "[a](data:text/html,<script>window.x=6</script>)",
    "![pic](https://tracker.example/p.png?secret=1)",
    '<a href="https://evil.example">x</a>',
    "```\n</code></pre><script>window.x=7</script>\n```",
    "`<b>bold?</b>`",
    "<svg onload=window.x=8>",
]


@pytest.mark.parametrize("source", HOSTILE)
async def test_hostile_markdown_makes_no_element_that_runs_or_loads(
    render: Render, source: str
) -> None:
    html = await render(source)
    tags = set(re.findall(r"<([a-z0-9]+)", html))
    assert tags <= {"p", "a", "code", "pre", "br", "strong", "em"}, html
    for href in re.findall(r'href="([^"]*)"', html):
        assert href.startswith(("https://", "http://", "mailto:")), html
    assert " on" not in re.sub(r"&[a-z]+;|>[^<]*<", "", html), html


async def test_structure_is_kept(render: Render) -> None:
    html = await render(
        "# Title\n\nSome **bold** and *em* and `code`.\n\n- one\n- two\n\n1. first\n\n"
        "> quoted\n\n```py\nx = 1 < 2\n```\n\n[site](https://example.org)"
    )
    assert "<h3>Title</h3>" in html and "<strong>bold</strong>" in html and "<em>em</em>" in html
    assert "<ul><li>one</li><li>two</li></ul>" in html and "<ol><li>first</li></ol>" in html
    assert "<blockquote><p>quoted</p></blockquote>" in html
    assert '<pre><code data-lang="py">x = 1 &lt; 2</code></pre>' in html
    assert 'href="https://example.org"' in html and 'rel="noopener noreferrer nofollow"' in html
