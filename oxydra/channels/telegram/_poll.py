"""The long-poll loop and its watchdog.

Theory of operation:
1. One loop calls `getUpdates(offset = stored offset + 1)`; each update is handed to
   `on_update`, which stores it (and moves the stored offset) before the next poll, so the
   offset Telegram sees is only ever confirmed for updates that are on disk.
2. Every completed round trip (with or without updates) is progress. Errors back off: a 429
   waits `retry_after`, a 409 (another poller) and the network wait 1 s doubling to 30 s;
   a 401/404 means the token is wrong: the loop stops and says so (`fatal`), and the rest
   of `vm` keeps serving.
3. The watchdog wakes every poll period; when no progress was made for `stall_factor`
   poll periods (a connection held open, a server trickling bytes so no read timeout
   fires), it cancels the loop, drops the polling client and starts both again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from oxydra.channels.telegram._api import BotApi
from oxydra.core.log import get_logger
from oxydra.wire.telegram import TelegramApiError, TgUpdate, decode_updates

_log = get_logger(__name__)


class PollHealth:
    """What `/status` and the gateway report about the poller."""

    def __init__(self) -> None:
        self.last_progress = time.monotonic()
        self.last_ok_wall: float | None = None
        self.failures = 0
        self.restarts = 0
        self.fatal: str | None = None
        self.last_error: str | None = None


class Poller:
    """Runs the loop of rule 1-2 under the watchdog of rule 3."""

    def __init__(
        self,
        api: BotApi,
        *,
        timeout_secs: int,
        offset: Callable[[], Awaitable[int]],
        on_update: Callable[[TgUpdate], Awaitable[None]],
        on_bad: Callable[[int, str], Awaitable[None]],
        stall_factor: float = 3.0,
    ) -> None:
        self.api = api
        self.timeout_secs = timeout_secs
        self.offset, self.on_update, self.on_bad = offset, on_update, on_bad
        self.stall_secs = max(stall_factor * timeout_secs, 3.0)
        self.health = PollHealth()
        self._loop: asyncio.Task[None] | None = None
        self._dog: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop and the watchdog."""
        self._loop = asyncio.create_task(self._run(), name="telegram-poll")
        self._dog = asyncio.create_task(self._watch(), name="telegram-watchdog")

    async def _run(self) -> None:
        delay = 1.0
        while True:
            try:
                result = await self.api.poll(await self.offset() + 1, self.timeout_secs)
                updates, bad = decode_updates(result)
                for update_id, reason in bad:
                    await self.on_bad(update_id, reason)
                for update in updates:
                    await self.on_update(update)
            except TelegramApiError as exc:
                self.health.failures += 1
                self.health.last_error = exc.description
                if exc.error_code in (401, 404):
                    self.health.fatal = f"Telegram refused the bot token ({exc.description})"
                    _log.error("telegram: %s; the channel stops, vm keeps serving", exc)
                    return
                wait = exc.retry_after if exc.retry_after is not None else delay
                delay = 1.0 if exc.retry_after is not None else min(delay * 2, 30.0)
                _log.warning("telegram poll failed (%s); retrying in %.0fs", exc, wait)
                self._progress()  # an answer, even an error, is the link working
                await asyncio.sleep(wait)
                continue
            delay = 1.0
            self._progress()
            self.health.last_ok_wall = time.time()

    def _progress(self) -> None:
        self.health.last_progress = time.monotonic()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(min(self.timeout_secs, self.stall_secs / 3))
            if self._loop is None or self._loop.done():
                if self.health.fatal is not None:
                    return
            stalled = time.monotonic() - self.health.last_progress
            if stalled < self.stall_secs and self._loop is not None and not self._loop.done():
                continue
            _log.warning(
                "telegram poll made no progress for %.0fs; restarting it with a new client",
                stalled,
            )
            self.health.restarts += 1
            await self._stop_loop()
            await self.api.reset_poller()
            self._progress()
            self._loop = asyncio.create_task(self._run(), name="telegram-poll")

    async def _stop_loop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loop

    async def aclose(self) -> None:
        """Stop the watchdog and the loop."""
        if self._dog is not None:
            self._dog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dog
        await self._stop_loop()
