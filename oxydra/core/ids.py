"""Identifier newtypes and generators.

UUIDv7 (RFC 9562 §5.7) ids sort by creation time, so session lists and event logs order
naturally by id. Python 3.11 has no `uuid.uuid7`, hence the small generator here.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import NewType

ModelId = NewType("ModelId", str)
ProviderId = NewType("ProviderId", str)

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """Return a time-ordered UUIDv7; ids made in the same millisecond stay monotonic."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter = (_counter + 1) & 0xFFF
            if _counter == 0:
                ms += 1
        else:
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        _last_ms = ms
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms << 80) | (0x7 << 76) | (_counter << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value)


def new_session_id() -> str:
    """A new session id: a UUIDv7 string."""
    return str(uuid7())


def new_request_id(prefix: str) -> str:
    """A short unique id with a readable prefix, for requests and tool calls."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
