"""HTML to readable text, in time linear in the page's size.

Headings become `#` lines, list items `- ` lines, links `[text](url)`, table cells are
joined with ` | `, `<pre>` keeps its whitespace; scripts, styles and other non-content
elements are dropped; runs of blank lines collapse to one.

The tokenizer is our own: the standard library's `html.parser` takes quadratic time on
hostile pages (`"<!" * 200_000` ran 1.7 s here, gh-135462 / CVE-2025-6069 and an unfixed
sibling) and can raise on malformed marked sections. Here every construct is closed with one
`str.find`, an unterminated one ends the scan, and raw-text elements (script, style) are
skipped to their end tag, so a page at the fetch cap parses in milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
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


_RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "noembed", "noframes"})
_NAME = re.compile(r"/?\s*([A-Za-z][A-Za-z0-9:-]*)")
_ATTR = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_MAX_TAG = 8192


def _tokens(html: str) -> Iterator[tuple[str, str, list[tuple[str, str | None]]]]:
    """("text", data, []), ("start", name, attrs) and ("end", name, []) in document order."""
    lower = html.lower()
    pos, size = 0, len(html)
    next_gt = -1
    while pos < size:
        lt = html.find("<", pos)
        if lt < 0:
            yield "text", unescape(html[pos:]), []
            return
        if lt > pos:
            yield "text", unescape(html[pos:lt]), []
        if html.startswith("<!--", lt):
            end = html.find("-->", lt + 4)
            pos = size if end < 0 else end + 3
            continue
        if html.startswith(("<!", "<?"), lt):
            end = html.find(">", lt + 2)
            pos = size if end < 0 else end + 1
            continue
        match = _NAME.match(html, lt + 1, min(size, lt + 64))
        if next_gt <= lt:  # one forward search serves every "<" before that ">"
            found = html.find(">", lt + 1)
            next_gt = size if found < 0 else found
        gt = next_gt if next_gt < size and next_gt - lt <= _MAX_TAG else -1
        if match is None or gt < 0:
            yield "text", "<", []
            pos = lt + 1
            continue
        name = match.group(1).lower()
        if html[lt + 1] == "/" or html[lt + 1 : match.start(1)].strip() == "/":
            yield "end", name, []
            pos = gt + 1
            continue
        yield "start", name, _attrs(html[match.end(1) : gt])
        pos = gt + 1
        if name in _RAW_TEXT:
            close = lower.find(f"</{name}", pos)
            stop = size if close < 0 else close
            yield "text", unescape(html[pos:stop]), []
            pos = stop


def _attrs(text: str) -> list[tuple[str, str | None]]:
    found = []
    for m in _ATTR.finditer(text):
        value = next((v for v in m.group(2, 3, 4) if v is not None), None)
        found.append((m.group(1).lower(), None if value is None else unescape(value)))
    return found


class _Extractor:
    def __init__(self, base_url: str) -> None:
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


MAX_TOKENS = 300_000


def html_to_text(html: str, base_url: str = "", max_tokens: int = MAX_TOKENS) -> tuple[str, str]:
    """Readable text of an HTML page and its `<title>`; stops after `max_tokens` tokens."""
    parser = _Extractor(base_url)
    for count, (kind, value, attrs) in enumerate(_tokens(html)):
        if count >= max_tokens:
            parser.out.append(f"\n\n[page cut: more than {max_tokens} HTML tokens]")
            break
        if kind == "text":
            parser.handle_data(value)
        elif kind == "start":
            parser.handle_starttag(value, attrs)
        else:
            parser.handle_endtag(value)
    lines = [line.strip() for line in "".join(parser.out).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return text, " ".join(parser.title.split())
