"""Provenance labels: where a piece of content came from, and whether it may steer the agent.

A `Label` is carried by message parts, messages, tool results, stored events, chunks,
notes and summaries. Absent (`None`) means trusted: the person who owns the session, the
operator's files and the configuration. Untrusted content names its sources
(`web_fetch https://…`, `mcp github`, `file /shared/x.md`, `chat alice`, `memory note-…`).

Rules every layer keeps:

1. Labels only grow while data flows: `merge` is a set union, and nothing the model says
   or does removes one. Only a person lifts taint (see docs/taint.md).
2. The label is stored beside the content, never inside its text, so stored payloads keep
   the Rust version's shape and old rows (no label) read as trusted.
3. A tool call runs inside `call_scope(label)`: stores that persist what the call wrote
   read `writing_label()` and keep it; stores that hand back labelled data report it with
   `note_read(label)`, and the registry adds it to the call's result.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from typing import Literal

import msgspec

Trust = Literal["trusted", "untrusted"]
MAX_SOURCES = 16
"""A label keeps at most this many distinct sources (the first ones seen): bounded size."""


class Source(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One origin of untrusted content: a kind (`web_fetch`, `mcp`...) and a reference."""

    kind: str
    ref: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.ref}" if self.ref else self.kind


class Label(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The trust of a piece of content; `sources` is non-empty exactly when untrusted."""

    trust: Trust = "untrusted"
    sources: tuple[Source, ...] = ()

    @property
    def untrusted(self) -> bool:
        """Whether the content must not steer high-impact actions."""
        return self.trust == "untrusted"

    def describe(self) -> str:
        """The sources as one line for people (approval prompts, `/status`, logs)."""
        return ", ".join(str(s) for s in self.sources) or "unknown source"


def untrusted(kind: str, ref: str = "") -> Label:
    """A label for content from one untrusted source."""
    return Label(sources=(Source(kind=kind, ref=ref[:300]),))


def merge(*labels: Label | None) -> Label | None:
    """The union of labels (None when all are trusted); sources keep first-seen order."""
    seen: dict[Source, None] = {}
    tainted = False
    for label in labels:
        if label is None or not label.untrusted:
            continue
        tainted = True
        for source in label.sources:
            if len(seen) >= MAX_SOURCES:
                break
            seen.setdefault(source, None)
    if not tainted:
        return None
    return Label(sources=tuple(seen) or (Source(kind="unknown"),))


def merge_all(labels: Iterable[Label | None]) -> Label | None:
    """`merge` over an iterable."""
    return merge(*labels)


_label_codec = msgspec.json.Encoder()
_label_decoder = msgspec.json.Decoder(Label)


def encode_label(label: Label | None) -> str | None:
    """JSON for a database column; None (SQL NULL) for trusted content."""
    return _label_codec.encode(label).decode() if label is not None and label.untrusted else None


def decode_label(text: str | bytes | None) -> Label | None:
    """The label of a database column (NULL or empty: trusted)."""
    if not text:
        return None
    label = _label_decoder.decode(text)
    return label if label.untrusted else None


# ---- the tool call in flight ---------------------------------------------------------

_writing: contextvars.ContextVar[Label | None] = contextvars.ContextVar(
    "oxydra_writing_label", default=None
)
_reads: contextvars.ContextVar[list[Label] | None] = contextvars.ContextVar(
    "oxydra_read_labels", default=None
)


@contextlib.contextmanager
def call_scope(label: Label | None) -> Iterator[list[Label]]:
    """Run a tool call under the step's label; yields the labels of what it read."""
    reads: list[Label] = []
    write_token = _writing.set(label)
    read_token = _reads.set(reads)
    try:
        yield reads
    finally:
        _writing.reset(write_token)
        _reads.reset(read_token)


def writing_label() -> Label | None:
    """The label data written by the current tool call must carry (None: trusted)."""
    return _writing.get()


def note_read(label: Label | None) -> None:
    """Record that the current tool call handed back labelled data (no-op outside a call)."""
    reads = _reads.get()
    if reads is not None and label is not None and label.untrusted:
        reads.append(label)
