"""Pure text helpers of the memory store: chunking, hashing, tags, FTS queries, media.

Nothing here touches SQLite or the clock of the database; everything is table-tested.

Decisions:

* Media bytes are not stored. Before a message is persisted each `MediaPart` becomes a
  `TextPart` placeholder naming its type, size and file name, so a restored message is
  still valid to send to any provider (an empty image part would be refused) and the
  model still sees that something was attached. Inline media would make every event
  up to 10 MiB and the database unbounded.
* Chunks are windows of 640 characters with 96 of overlap over whitespace-collapsed text,
  as upstream; a window ends at the last space of its final 64 characters when there is
  one, so words are not cut in half (which would hide them from full-text search).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable

import msgspec

from oxydra.core import MediaPart, Message, TextPart, ToolArgumentsError

CHUNK_CHARS = 640
CHUNK_OVERLAP = 96
MAX_TAGS = 16
MAX_TAG_CHARS = 64
MAX_FTS_TERMS = 32

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
_json = msgspec.json.Encoder()

# Words too common to help a keyword search; dropped from FTS queries that have others.
_STOPWORDS = frozenset(
    "a an and are as at be but by did do does for from had has have how i if in is it its "
    "me my no not of on or our so than that the their them then there these they this to "
    "was we were what when where which who why will with you your".split()
)


def now_iso() -> str:
    """The current UTC time as the store writes it: `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    now = time.time()
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return f"{base}.{int(now * 1000) % 1000:03d}Z"


def content_hash(text: str) -> str:
    """Stable hex digest of a chunk's text (blake2b-256)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=32).hexdigest()


def collapse_whitespace(text: str) -> str:
    """Runs of whitespace become one space; ends are trimmed."""
    return _SPACE.sub(" ", text).strip()


def blank_media(message: Message) -> Message:
    """The message with every media part replaced by a short text placeholder."""
    if not message.media:
        return message
    assert not isinstance(message.content, str) and message.content is not None
    parts = tuple(_placeholder(p) if isinstance(p, MediaPart) else p for p in message.content)
    return msgspec.structs.replace(message, content=parts)


def _placeholder(part: MediaPart) -> TextPart:
    name = f", {part.file_name}" if part.file_name else ""
    return TextPart(text=f"[attachment not kept: {part.mime_type}, {len(part.data)} bytes{name}]")


def message_source(message: Message) -> str:
    """The indexing source label of a message (upstream's names)."""
    match message.role:
        case "user":
            return "user_message"
        case "tool":
            return "tool_output"
        case "system":
            return "system_message"
        case "assistant":
            return "assistant_tool_call" if message.tool_calls else "assistant_message"


def message_text(message: Message) -> str:
    """Searchable text of a message: its text plus one line per tool call, collapsed."""
    lines = [message.text]
    for call in message.tool_calls:
        arguments = _json.encode(call.arguments).decode()
        lines.append(f"tool {call.name} arguments {arguments}")
    return collapse_whitespace("\n".join(lines))


def chunk_windows(text: str, size: int = CHUNK_CHARS, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """Overlapping windows over `text`, each at most `size` characters."""
    if size <= overlap or overlap < 0:
        raise ValueError("chunk size must exceed a non-negative overlap")
    if len(text) <= size:
        return [text] if text else []
    windows: list[str] = []
    start = 0
    while True:
        end = min(start + size, len(text))
        if end < len(text):
            cut = text.rfind(" ", end - 64, end)
            end = cut if cut > start + overlap else end
        windows.append(text[start:end].strip())
        if end >= len(text):
            return [w for w in windows if w]
        start = end - overlap


def normalize_tags(tags: Iterable[str] | None) -> tuple[str, ...]:
    """Trim, lowercase and de-duplicate tags, keeping their order.

    Raises:
        ToolArgumentsError: more than 16 tags, or one longer than 64 characters.
    """
    seen: dict[str, None] = {}
    for raw in tags or ():
        tag = raw.strip().lower()
        if len(tag) > MAX_TAG_CHARS:
            raise ToolArgumentsError(f"tag {tag[:20]!r}... is longer than {MAX_TAG_CHARS} chars")
        if tag:
            seen.setdefault(tag, None)
    if len(seen) > MAX_TAGS:
        raise ToolArgumentsError(f"at most {MAX_TAGS} tags are allowed, got {len(seen)}")
    return tuple(seen)


def content_words(text: str) -> list[str]:
    """The lowercase words of `text` in order, function words dropped when others remain."""
    words = [w.lower() for w in _WORD.findall(text)]
    content = [w for w in words if w not in _STOPWORDS]
    return content or words


def query_terms(query: str) -> list[str]:
    """Distinct lowercase words of a query, stopwords dropped when others remain."""
    return list(dict.fromkeys(content_words(query)))[:MAX_FTS_TERMS]


def fts_query(query: str) -> str | None:
    """An FTS5 MATCH expression: the OR of the query's words, each quoted.

    Each term is a double-quoted string (any `"` doubled), so FTS5 operators and column
    filters typed by the user (`AND`, `NEAR`, `col:`, `*`) are plain words. The OR lets
    a document match some of the words, and BM25 ranks those matching more and rarer
    words first; upstream's single phrase matched only the exact word sequence.
    Returns None when the query has no words.
    """
    terms = query_terms(query)
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def chunk_id_for(session_id: str, sequence: int, index: int, digest: str) -> str:
    """Upstream's conversation chunk id: `chunk:{session}:{seq}:{index}:{hash16}`."""
    return f"chunk:{session_id}:{sequence}:{index}:{digest[:16]}"
