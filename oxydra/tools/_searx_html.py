"""SearXNG's HTML results page read with `html.parser` (its own module: the parser is
loaded only when a search answers with HTML, not by every start that builds `web_search`)."""

from __future__ import annotations

from html.parser import HTMLParser


def parse_searx_html(html: str) -> list[tuple[str, str, str]]:
    """(title, url, snippet) of each result of the page, whitespace tidied."""
    parser = _SearxHTML()
    parser.feed(html)
    return [(t.strip(), u, " ".join(s.split())) for t, u, s in parser.results if u]


class _SearxHTML(HTMLParser):
    """Results from SearXNG's HTML page (`<article class="result">` with h3 link and p.content)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.results: list[list[str]] = []
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if tag == "article" and "result" in classes:
            self.results.append(["", "", ""])
        elif self.results and tag == "a" and self._field is None and not self.results[-1][1]:
            self.results[-1][1] = found.get("href") or ""
            self._field = "title"
        elif self.results and tag == "p" and "content" in classes:
            self._field = "snippet"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("a", "p"):
            self._field = None

    def handle_data(self, data: str) -> None:
        if self.results and self._field == "title":
            self.results[-1][0] += data
        elif self.results and self._field == "snippet":
            self.results[-1][2] += data
