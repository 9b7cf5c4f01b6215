"""LISTEN on a PostgreSQL channel: the notifications other hosts send, as an async stream.

A dedicated async connection (psycopg's `AsyncConnection`, autocommit) so that waiting for a
notification never occupies the store's worker thread. A lost connection is reopened with
a growing delay (0.1 s to 5 s). `None` is yielded each time LISTEN is in place (the first
time too): whatever was sent before that was not heard, so the reader re-reads what it
follows. Senders use
`pg_notify(channel, payload)` inside their own transaction, so a notification arrives only
after the rows it announces are committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from oxydra.core import get_logger

_log = get_logger(__name__)


async def listen(url: str, password: str | None, channel: str) -> AsyncIterator[str | None]:
    """Payloads sent on `channel`, forever; `None` after a reconnect (see module doc)."""
    import psycopg

    extra: dict[str, Any] = {"autocommit": True, "connect_timeout": 10}
    if password is not None:
        extra["password"] = password
    delay = 0.1
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(url, application_name="oxydra", **extra)
        except psycopg.Error as exc:
            _log.warning("LISTEN %s: cannot connect (%s); retrying", channel, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        try:
            await conn.execute(f'LISTEN "{channel}"'.encode())
            delay = 0.1
            yield None
            async for note in conn.notifies():
                yield note.payload
        except psycopg.Error as exc:
            _log.warning("LISTEN %s: connection lost (%s); reconnecting", channel, exc)
        finally:
            await conn.close()
