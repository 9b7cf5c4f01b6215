"""`web_search`: DuckDuckGo (Instant Answer API), Google Custom Search or SearXNG.

Backends come from `[tools.web_search]`; every request (each base URL tried, in order)
goes through the same SSRF-guarded client as `web_fetch`. Output is the Rust version's
JSON: `{query, provider, base_url, result_count, results[{index, title, url, display_url?,
snippet}]}`; snippets are cut to 2,000 characters, responses read up to 1 MiB.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

import msgspec

from oxydra.config.schema import WebSearchConfig
from oxydra.core.errors import OxydraError, ToolError
from oxydra.core.tiers import SafetyTier
from oxydra.security import EgressClient, FetchResponse
from oxydra.tools._decorator import FunctionTool, tool

DEFAULT_BASES = {
    "duckduckgo": "https://api.duckduckgo.com/",
    "google": "https://www.googleapis.com/customsearch/v1",
}
MAX_RESPONSE_BYTES = 1 << 20
MAX_SNIPPET = 2000
_GOOGLE_SORT = {
    "day": "date:r:1d",
    "week": "date:r:7d",
    "month": "date:r:30d",
    "year": "date:r:365d",
}
Freshness = Literal["day", "week", "month", "year"]


class SearchResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One result as the model sees it."""

    index: int
    title: str
    url: str
    snippet: str
    display_url: str | None = None


class SearchOutput(msgspec.Struct, kw_only=True):
    """The whole `web_search` answer."""

    query: str
    provider: str
    base_url: str
    result_count: int
    results: list[SearchResult]


_Raw = tuple[str, str, str, str | None]  # title, url, snippet, display url


class WebSearch:
    """Runs one query against the configured provider, trying each base URL in turn."""

    def __init__(
        self, client: EgressClient, config: WebSearchConfig, environ: Mapping[str, str]
    ) -> None:
        self.client = client
        self.config = config
        self.environ = environ

    def bases(self) -> list[str]:
        """Base URLs in the order they are tried."""
        listed = [b.strip() for b in (self.config.base_urls or "").split(",") if b.strip()]
        if self.config.base_url:
            listed.insert(0, self.config.base_url)
        if not listed and self.config.provider in DEFAULT_BASES:
            listed.append(DEFAULT_BASES[self.config.provider])
        if not listed:
            raise ToolError("searxng needs [tools.web_search] base_url or base_urls")
        return list(dict.fromkeys(listed))

    async def search(self, query: str, count: int, freshness: Freshness | None) -> SearchOutput:
        """Results from the first base URL that answers; the last error if none does."""
        failure: OxydraError | None = None
        for base in self.bases():
            try:
                raw = await self._one(base, query, count, freshness)
            except OxydraError as exc:
                failure = exc
                continue
            results = [
                SearchResult(index=i, title=t, url=u, snippet=s[:MAX_SNIPPET], display_url=d)
                for i, (t, u, s, d) in enumerate(raw[:count], 1)
            ]
            return SearchOutput(
                query=query,
                provider=self.config.provider,
                base_url=base,
                result_count=len(results),
                results=results,
            )
        raise ToolError(f"web search failed on every base URL: {failure}") from failure

    async def _one(
        self, base: str, query: str, count: int, freshness: Freshness | None
    ) -> list[_Raw]:
        provider = self.config.provider
        url, params, parse = self._request(provider, base, query, count, freshness)
        params.update(dict(parse_qsl(self.config.query_params or "")))
        response = await self.client.fetch(url, params=params, max_bytes=MAX_RESPONSE_BYTES)
        if not 200 <= response.status < 300:
            preview = response.content[:256].decode("utf-8", errors="replace")
            raise ToolError(f"{provider} at {base} answered HTTP {response.status}: {preview}")
        return parse(response)

    def _request(
        self, provider: str, base: str, query: str, count: int, freshness: Freshness | None
    ) -> tuple[str, dict[str, str], Callable[[FetchResponse], list[_Raw]]]:
        if provider == "google":
            return base, self._google_params(query, count, freshness), _parse_google
        if provider == "searxng":
            params = {"q": query, "format": "json", "pageno": "1", "count": str(count)}
            for key in ("engines", "categories"):
                value = getattr(self.config, key)
                if value:
                    params[key] = value
            if self.config.safesearch is not None:
                params["safesearch"] = str(self.config.safesearch)
            if freshness:
                params["time_range"] = freshness
            return base.rstrip("/") + "/search", params, _parse_searxng
        params = {"q": query, "format": "json", "no_html": "1", "no_redirect": "1",
                  "skip_disambig": "1", "t": "oxydra"}  # fmt: skip
        return base, params, _parse_duckduckgo

    def _google_params(self, query: str, count: int, freshness: Freshness | None) -> dict[str, str]:
        key = self._env(self.config.api_key_env, "OXYDRA_WEB_SEARCH_GOOGLE_API_KEY")
        cx = self._env(self.config.engine_id_env, "OXYDRA_WEB_SEARCH_GOOGLE_CX")
        if not key or not cx:
            raise ToolError(
                "google search needs an API key and an engine id: set the variables named by "
                "[tools.web_search] api_key_env and engine_id_env"
            )
        params = {"key": key, "cx": cx, "q": query, "num": str(count)}
        if freshness:
            params["sort"] = _GOOGLE_SORT[freshness]
        return params

    def _env(self, named: str | None, fallback: str) -> str:
        return (self.environ.get(named, "") if named else "") or self.environ.get(fallback, "")


def _json(response: FetchResponse) -> Any:
    try:
        return msgspec.json.decode(response.content)
    except msgspec.DecodeError as exc:
        raise ToolError(f"search answer from {response.url} is not JSON") from exc


def _parse_duckduckgo(response: FetchResponse) -> list[_Raw]:
    data = _json(response)
    results: list[_Raw] = []
    if isinstance(data, dict) and data.get("AbstractURL") and data.get("AbstractText"):
        heading = str(data.get("Heading") or data["AbstractURL"])
        results.append((heading, str(data["AbstractURL"]), str(data["AbstractText"]), None))
    topics = data.get("RelatedTopics", []) if isinstance(data, dict) else []
    for topic in _flatten_topics(topics):
        text, url = str(topic.get("Text", "")), str(topic.get("FirstURL", ""))
        if text and url:
            results.append((text.split(" - ", 1)[0], url, text, None))
    return results


def _flatten_topics(topics: Any) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []
    for topic in topics if isinstance(topics, list) else []:
        if isinstance(topic, dict) and isinstance(topic.get("Topics"), list):
            flat.extend(t for t in topic["Topics"] if isinstance(t, dict))
        elif isinstance(topic, dict):
            flat.append(topic)
    return flat


def _parse_google(response: FetchResponse) -> list[_Raw]:
    data = _json(response)
    items = data.get("items", []) if isinstance(data, dict) else []
    return [
        (
            str(i.get("title", "")),
            str(i.get("link", "")),
            str(i.get("snippet", "")),
            i.get("displayLink"),
        )
        for i in items
        if isinstance(i, dict) and i.get("link")
    ]


def _parse_searxng(response: FetchResponse) -> list[_Raw]:
    if "html" in response.content_type:  # html.parser is loaded only for such a page
        from oxydra.tools._searx_html import parse_searx_html

        page = response.content.decode("utf-8", errors="replace")
        return [(t, u, s, _host(u)) for t, u, s in parse_searx_html(page)]
    data = _json(response)
    items = data.get("results", []) if isinstance(data, dict) else []
    return [
        (
            str(i.get("title", "")),
            str(i.get("url", "")),
            str(i.get("content", "")),
            _host(i.get("url")),
        )
        for i in items
        if isinstance(i, dict) and i.get("url")
    ]


def _host(url: Any) -> str | None:
    return urlsplit(url).hostname if isinstance(url, str) else None


def web_search_tool(
    client: EgressClient, config: WebSearchConfig | None, environ: Mapping[str, str]
) -> FunctionTool:
    """The `web_search` tool; DuckDuckGo when `[tools.web_search]` is absent."""
    searcher = WebSearch(client, config or WebSearchConfig(), environ)

    @tool(name="web_search", timeout=30, safety_tier=SafetyTier.SIDE_EFFECTING)
    async def web_search(
        query: Annotated[str, msgspec.Meta(min_length=1, max_length=500)],
        count: Annotated[int, msgspec.Meta(ge=1, le=10)] = 5,
        freshness: Freshness | None = None,
    ) -> SearchOutput:
        """Search the web and return titles, URLs and snippets.

        Args:
            query: What to search for.
            count: Number of results (1-10).
            freshness: Only results this recent.
        """
        return await searcher.search(query, count, freshness)

    return web_search
