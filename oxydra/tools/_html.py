"""HTML to readable text with the standard library's `html.parser` (no extra dependency).

Headings become `#` lines, list items `- ` lines, links `[text](url)`, table cells are
joined with ` | `, `<pre>` keeps its whitespace; scripts, styles and other non-content
elements are dropped; runs of blank lines collapse to one.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin

_SKIP = frozenset(
    {"script", "style", "noscript", "template", "svg", "iframe", "object", "canvas", "head"}
)
_BLOCK = frozenset(
    {"p", "div", "section", "article", "header", "footer", "main", "nav", "aside", "ul", "ol",
     "table", "tr", "blockquote", "pre", "hr", "dl", "dt", "dd", "figure", "figcaption", "form",
     "address", "h1", "h2", "h3", "h4", "h5", "h6", "li", "br", "details", "summary"}
)  # fmt: skip
_VOID = frozenset(
    {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "wbr"}
)


class _Extractor(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.out: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._pre = 0
        self._links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _SKIP and tag not in _VOID:
            self._skip += 1
        if self._skip:
            return
        if tag in _BLOCK:
            self.out.append("\n")
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.out.append("#" * int(tag[1]) + " ")
        elif tag == "li":
            self.out.append("- ")
        elif tag in ("td", "th"):
            self.out.append(" | ")
        elif tag == "pre":
            self._pre += 1
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.out)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIP and tag not in _VOID:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag == "a" and self._links:
            self._close_link(*self._links.pop())
        if tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._skip:
            return
        self.out.append(data if self._pre else re.sub(r"\s+", " ", data))

    def _close_link(self, href: str | None, start: int) -> None:
        text = "".join(self.out[start:]).strip()
        if not href or href.startswith(("#", "javascript:", "mailto:")) or not text:
            return
        url = urljoin(self.base_url, href)
        if url != text:
            del self.out[start:]
            self.out.append(f"[{text}]({url})")


def html_to_text(html: str, base_url: str = "") -> tuple[str, str]:
    """Readable text of an HTML page and its `<title>`."""
    parser = _Extractor(base_url)
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.out).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return text, " ".join(parser.title.split())
