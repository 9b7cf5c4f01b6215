"""A session's replay log, bounded by bytes, that never loses a turn still in it.

Theory of operation:
1. Frames are logged as encoded bytes with their `seq`, as they were sent. While the log is
   under its byte budget a reconnecting client is replayed exactly the frames it missed.
2. Over budget, the log compacts in three steps, cheapest loss first:
   a. the `assistant_delta` and `turn_progress` frames of finished turns are dropped: the
      turn's terminal frame carries the whole answer, so nothing a client needs is lost;
   b. runs of the running turn's deltas are coalesced into one entry holding their text and
      where each delta ended, so a client that saw part of the run is sent the rest as one
      delta (numbered as the run's last frame);
   c. only then are the oldest finished turns dropped whole, raising `floor`: a client whose
      `last_seq` is below it gets a `replay_gap`. The running turn is never dropped.
3. After compacting, the next compaction waits until the log has doubled, so compaction
   costs amortised constant time per frame however large the running turn grows.
"""

from __future__ import annotations

from array import array
from collections import deque
from typing import Literal

import msgspec

from oxydra.wire.gateway import AssistantDelta, TaggedFrame, TurnStatus, encode_frame

Kind = Literal["delta", "progress", "terminal", "other"]
_ENTRY_OVERHEAD = 64


class _Entry:
    """One logged frame, or a coalesced run of one turn's deltas."""

    __slots__ = ("data", "ends", "first", "kind", "last", "template", "text", "turn_id")

    def __init__(self, seq: int, data: bytes, kind: Kind, turn_id: str | None) -> None:
        self.first = self.last = seq
        self.data: bytes | None = data
        self.kind, self.turn_id = kind, turn_id
        self.text: str = ""
        self.ends: array[int] | None = None  # end offset in `text` of each seq first..last
        self.template: AssistantDelta | None = None

    @property
    def size(self) -> int:
        if self.ends is None:
            return len(self.data or b"") + _ENTRY_OVERHEAD
        return len(self.text) + self.ends.itemsize * len(self.ends) + 4 * _ENTRY_OVERHEAD

    def frames_after(self, last_seq: int) -> bytes | None:
        """What a client that saw up to `last_seq` still needs from this entry."""
        if self.last <= last_seq:
            return None
        if self.ends is None:
            return self.data
        assert self.template is not None
        start = self.ends[last_seq - self.first] if last_seq >= self.first else 0
        frame = msgspec.structs.replace(self.template, delta=self.text[start:], seq=self.last)
        return encode_frame(frame)


class FrameLog:
    """Encoded frames of one session, numbered, within `budget_bytes` (see module doc)."""

    def __init__(self, budget_bytes: int = 1 << 20) -> None:
        self.budget = budget_bytes
        self.entries: deque[_Entry] = deque()
        self.bytes = 0
        self.floor = 0  # frames at or below this seq may be lost to a replay
        self._limit = budget_bytes
        self._finished: set[str] = set()
        self.running: str | None = None

    def append(self, seq: int, frame: TaggedFrame, data: bytes) -> None:
        """Log one frame (already numbered and encoded)."""
        turn = getattr(frame, "turn", None)
        if not isinstance(turn, TurnStatus):  # `usage` names its turn by `turn_id` alone
            turn = None
        turn_id = turn.turn_id if turn is not None else getattr(frame, "turn_id", None)
        kind: Kind = "other"
        if frame.TYPE == "assistant_delta":
            kind = "delta"
        elif frame.TYPE == "turn_progress":
            kind = "progress"
        elif turn is not None and turn.state != "running":
            kind = "terminal"
        if turn_id is not None:
            if kind == "terminal":
                self._finished.add(turn_id)
                self.running = None if self.running == turn_id else self.running
            elif frame.TYPE == "turn_started":
                self.running = turn_id
        entry = _Entry(seq, data, kind, turn_id)
        self.entries.append(entry)
        self.bytes += entry.size
        if self.bytes > self._limit:
            self.compact()

    def replay(self, last_seq: int) -> tuple[list[bytes], bool]:
        """The frames after `last_seq`, and whether some of them are no longer kept."""
        out = [d for e in self.entries if (d := e.frames_after(last_seq)) is not None]
        return out, last_seq < self.floor

    def compact(self) -> None:
        """Shrink to the budget, losing as little as possible (module doc, step 2)."""
        self._drop_finished_deltas()
        if self.bytes > self.budget:
            self._coalesce()
        while self.bytes > self.budget and self.entries:
            head = self.entries[0]
            if head.turn_id is not None and head.turn_id == self.running:
                break
            self.entries.popleft()
            self.bytes -= head.size
            self.floor = head.last
        self._finished = {e.turn_id for e in self.entries if e.kind == "terminal" and e.turn_id}
        self._limit = max(self.budget, 2 * self.bytes)

    def _drop_finished_deltas(self) -> None:
        kept: deque[_Entry] = deque()
        for entry in self.entries:
            if entry.kind in ("delta", "progress") and entry.turn_id in self._finished:
                self.bytes -= entry.size
                continue
            kept.append(entry)
        self.entries = kept

    def _coalesce(self) -> None:
        merged: deque[_Entry] = deque()
        group: list[_Entry] = []
        for entry in self.entries:
            if group and not (
                entry.kind == "delta"
                and group[-1].turn_id == entry.turn_id
                and group[-1].last + 1 == entry.first
            ):
                merged.append(self._fold(group))
                group = []
            if entry.kind == "delta":
                group.append(entry)
            else:
                merged.append(entry)
        if group:
            merged.append(self._fold(group))
        self.entries = merged

    def _fold(self, group: list[_Entry]) -> _Entry:
        """One coalesced entry for consecutive deltas of one turn."""
        if len(group) == 1:
            return group[0]
        run = group[0]
        parts: list[str] = []
        ends: array[int] = array("I")
        base = 0
        for entry in group:
            self.bytes -= entry.size
            text, entry_ends, template = _run_of(entry)
            parts.append(text)
            ends.extend(base + end for end in entry_ends)
            base += len(text)
            run.template = run.template or template
        run.text, run.ends, run.data, run.last = "".join(parts), ends, None, group[-1].last
        self.bytes += run.size
        return run


def _run_of(entry: _Entry) -> tuple[str, array[int], AssistantDelta]:
    """An entry's text, per-seq end offsets and frame template (decoding a plain delta)."""
    if entry.ends is not None and entry.template is not None:
        return entry.text, entry.ends, entry.template
    assert entry.data is not None
    frame = msgspec.json.decode(entry.data, type=_Envelope).payload
    template = msgspec.structs.replace(frame, delta="", seq=None)
    return frame.delta, array("I", [len(frame.delta)]), template


class _Envelope(msgspec.Struct):
    payload: AssistantDelta
