"""`web_fetch`: one URL through the SSRF guard, turned into text the model can read.

Output is the Rust version's JSON: `{url, status, output_format, mode, content_type,
content_length, body, truncated?, title?, note?}` where `mode` is `text` for HTML (converted),
`raw` for other text types and `metadata_only` for binary ones. The body is read up to
5 MiB and shown up to 50,000 characters; a non-2xx answer is an error with a 256-byte preview.
Compressed bodies (gzip, deflate, at most two stacked) are inflated step by step off the
event loop and stop at the same 5 MiB (`security/_inflate.py`); other encodings are refused.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec

from oxydra.core.errors import ToolError
from oxydra.core.tiers import SafetyTier
from oxydra.security import EgressClient, FetchResponse
from oxydra.tools._context import ToolExecutionContext
from oxydra.tools._decorator import FunctionTool, tool

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_BODY_CHARS = 50_000
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
_TEXT_SUFFIXES = ("+json", "+xml")


class FetchOutput(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What `web_fetch` returns (field names as in the Rust version)."""

    url: str
    status: int
    output_format: str = "auto"
    mode: str
    content_type: str
    content_length: int
    body: str
    truncated: bool = False
    title: str | None = None
    note: str | None = None


def web_fetch_tool(
    client: EgressClient, *, max_body_bytes: int = MAX_BODY_BYTES, max_chars: int = MAX_BODY_CHARS
) -> FunctionTool:
    """The `web_fetch` tool over `client` (which carries the SSRF guard)."""

    @tool(name="web_fetch", timeout=30, safety_tier=SafetyTier.SIDE_EFFECTING)
    async def web_fetch(
        ctx: ToolExecutionContext, url: Annotated[str, msgspec.Meta(min_length=1)]
    ) -> FetchOutput:
        """Fetch a web page or file as readable text.

        Args:
            url: Absolute http(s) URL; private and local addresses are refused.
        """
        response = await client.fetch(url, max_bytes=max_body_bytes)
        if not 200 <= response.status < 300:
            preview = response.content[:256].decode("utf-8", errors="replace")
            raise ToolError(f"{response.url} answered HTTP {response.status}: {preview}")
        # Parsing a hostile page is CPU work: keep it off the event loop.
        return await asyncio.to_thread(render, response, max_chars)

    return web_fetch


def render(response: FetchResponse, max_chars: int) -> FetchOutput:
    """Turn a fetched response into `FetchOutput` (text, raw or metadata only)."""
    kind = response.content_type
    common: dict[str, Any] = {
        "url": response.url,
        "status": response.status,
        "content_type": kind or "unknown",
        "content_length": len(response.content),
    }
    if not _is_text(kind, response.content):
        note = "binary content is not shown; fetch a text or HTML URL instead"
        return FetchOutput(mode="metadata_only", body="", note=note, **common)
    text = response.content.decode(_charset(response), errors="replace")
    title: str | None = None
    mode = "raw"
    if kind in ("text/html", "application/xhtml+xml") or (
        not kind and "<html" in text[:512].lower()
    ):
        from oxydra.tools._html import html_to_text  # html.entities: 0.3 MiB an idle vm skips

        text, title = html_to_text(text, response.url)
        mode = "text"
    cut = len(text) > max_chars or response.truncated
    body = text[:max_chars] + ("\n\n[truncated]" if cut else "")
    return FetchOutput(mode=mode, body=body, truncated=cut, title=title or None, **common)


def _is_text(kind: str, content: bytes) -> bool:
    if (
        kind.startswith(_TEXT_TYPES)
        or kind.endswith(_TEXT_SUFFIXES)
        or kind == "application/xhtml+xml"
    ):
        return True
    return not kind and b"\x00" not in content[:1024]


def _charset(response: FetchResponse) -> str:
    header = response.headers.get("content-type", "")
    for part in header.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            candidate = value.strip("\"' ").lower()
            try:
                "".encode(candidate)
            except LookupError:
                return "utf-8"
            return candidate
    return "utf-8"
