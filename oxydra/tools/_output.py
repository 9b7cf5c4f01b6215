"""A tool's output made safe to show the model: host paths hidden, secrets redacted, size capped.

Order matters for both safety and cost. The text is first cut to the limit plus a margin
(`Scrubber.lookahead`) so a 100 MiB output is never scanned whole, then paths are rewritten
and secrets redacted on what is left, then the result is cut to the limit. A secret that
starts before the limit either ends inside the margin (seen whole, redacted) or is longer
than any fixed-length shape or known value, in which case the open-ended shapes (private
key blocks, `key=value`, bearer tokens) still match its prefix. The final cut can then only
split a redaction marker, never a secret. The size in the marker is the original's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import NamedTuple

from oxydra.security import Scrubber

OFFLOAD_CHARS = 32 * 1024  # longer outputs are scrubbed in a worker thread, off the event loop


class CleanOutput(NamedTuple):
    """What the model sees, whether anything was cut or redacted, the original size in bytes."""

    text: str
    truncated: bool
    original_bytes: int
    scrubbed: bool


def clean_output(
    text: str, *, scrubber: Scrubber, to_virtual: Callable[[str], str], limit: int
) -> CleanOutput:
    """`text` with paths virtual and secrets redacted, cut to `limit` UTF-8 bytes."""
    size = _utf8_len(text)
    precut = size > limit and len(text) > limit + scrubber.lookahead
    if precut:
        text = text[: limit + scrubber.lookahead]
    virtual = to_virtual(text)
    cleaned = scrubber.scrub(virtual)
    shown, cleaned_size = truncate(cleaned, limit, total=size if precut else None)
    truncated = precut or shown != cleaned
    return CleanOutput(shown, truncated, size if precut else cleaned_size, cleaned != virtual)


async def clean_output_async(
    text: str, *, scrubber: Scrubber, to_virtual: Callable[[str], str], limit: int
) -> CleanOutput:
    """`clean_output`, in a worker thread when `text` is long enough to stall the loop."""
    if len(text) <= OFFLOAD_CHARS:
        return clean_output(text, scrubber=scrubber, to_virtual=to_virtual, limit=limit)
    return await asyncio.to_thread(
        clean_output, text, scrubber=scrubber, to_virtual=to_virtual, limit=limit
    )


def truncate(text: str, limit: int, *, total: int | None = None) -> tuple[str, int]:
    """`text` cut to `limit` UTF-8 bytes with a marker naming the full size; and that size.

    `total` is the size to report when `text` is itself already a cut of something longer.
    """
    data = text.encode("utf-8")
    size = len(data) if total is None else total
    if len(data) <= limit and total is None:
        return text, size
    head = data[:limit].decode("utf-8", errors="ignore")
    return f"{head}\n...[output truncated: {size} bytes total]", size


def _utf8_len(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", errors="surrogatepass"))
