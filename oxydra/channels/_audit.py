"""The sender audit log: one JSON line per refused sender, bounded so a flood cannot fill a disk.

Format as upstream (`<workspace>/.oxydra/sender_audit.log`): `timestamp` (UTC, seconds),
`channel`, `sender_id`, `reason`, `context`. Limits (ours):
1. A token bucket: at most `burst` lines at once, refilled at `per_minute`; lines over it are
   counted, and the count is written as one `suppressed` line when the bucket refills.
2. One line per sender per `per_sender_secs`: a single account hammering the bot costs one
   line a minute.
3. The file is rotated to `.1` past `max_bytes` (one old generation is kept).
The clock is injectable, so the limits are tested without sleeping.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec

_encode = msgspec.json.Encoder().encode


class SenderAudit:
    """Appends refused senders to the audit log, rate-limited (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        burst: int = 20,
        per_minute: float = 20,
        per_sender_secs: float = 60,
        max_bytes: int = 5 * 2**20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.burst, self.rate = burst, per_minute / 60
        self.per_sender_secs, self.max_bytes = per_sender_secs, max_bytes
        self.clock = clock
        self._tokens = float(burst)
        self._at = clock()
        self._seen: OrderedDict[str, float] = OrderedDict()
        self.suppressed = 0

    def refuse(self, channel: str, sender_id: str, reason: str, context: str) -> bool:
        """Record a refused sender; returns whether a line was written."""
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        last = self._seen.get(sender_id)
        if (last is not None and now - last < self.per_sender_secs) or self._tokens < 1:
            self.suppressed += 1
            return False
        self._seen[sender_id] = now
        self._seen.move_to_end(sender_id)
        while len(self._seen) > 4096:
            self._seen.popitem(last=False)
        lines = []
        if self.suppressed and self._tokens >= 2:
            lines.append(
                {
                    "timestamp": _stamp(),
                    "channel": channel,
                    "reason": "suppressed",
                    "suppressed": self.suppressed,
                }
            )
            self._tokens -= 1
            self.suppressed = 0
        lines.append(
            {
                "timestamp": _stamp(),
                "channel": channel,
                "sender_id": sender_id,
                "reason": reason,
                "context": context,
            }
        )
        self._tokens -= 1
        self._write(b"".join(_encode(line) + b"\n" for line in lines))
        return True

    def _write(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.path.stat().st_size + len(data) > self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except FileNotFoundError:
            pass
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
