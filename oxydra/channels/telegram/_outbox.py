"""Delivers the durable outbox to Telegram: in order, each row once, retried when it may pass.

Rules:
1. Rows go out in id order. A 429 waits exactly `retry_after`; a 5xx or a network error
   waits 1 s doubling to 60 s; the same row is tried again (it is still `pending` on disk,
   so a crash in between retries it after the restart).
2. A row is `sent` with Telegram's message id as soon as Telegram accepted it. The one
   window in which a crash repeats a message is between Telegram's answer and that commit.
   Answers are therefore edits of the "working" message where possible: an edit repeated
   is harmless ("message is not modified" counts as delivered).
3. "can't parse entities" sends the same piece as plain text (and says so in the log);
   "message is too long" (a Bot API server whose limit is below `max_message_length`)
   sends it as plain text in halves, split again until each half passes;
   "message to edit not found" sends it as a new message; other 4xx fail the row for good
   (a chat that was deleted, a bot that was blocked) and the queue moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import msgspec

from oxydra.channels._store import ChannelStore, OutboxRow
from oxydra.channels.telegram._api import BotApi
from oxydra.core.log import get_logger
from oxydra.wire.telegram import TelegramApiError, parse_context
from oxydra.wire.telegram_format import split_plain

_log = get_logger(__name__)
MAX_ATTEMPTS = 30


class _Sent(msgspec.Struct, frozen=True):
    message_id: int


_sent = msgspec.json.Decoder(_Sent)


class MediaPayload(msgspec.Struct, frozen=True, kw_only=True):
    """A file in the outbox (`media_json`)."""

    method: str
    field: str
    file_name: str
    data: bytes
    caption: str | None = None


_media = msgspec.json.Decoder(MediaPayload)


class OutboxSender:
    """The delivery loop; `wake()` after queueing rows."""

    def __init__(
        self,
        api: BotApi,
        store: ChannelStore,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.api, self.store = api, store
        self.failures = 0
        self.delivered = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sleep = sleep or asyncio.sleep

    def start(self) -> None:
        """Start delivering (and deliver what a previous run left pending)."""
        self._task = asyncio.create_task(self._run(), name="telegram-outbox")
        self._wake.set()

    def wake(self) -> None:
        """New rows are queued."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while rows := await self.store.pending():
                for row in rows:
                    await self._deliver(row)

    async def _deliver(self, row: OutboxRow) -> None:
        delay, attempts = 1.0, row.attempts
        while True:
            try:
                message_id = await self._send(row)
            except TelegramApiError as exc:
                attempts += 1
                self.failures += 1
                if not exc.retryable or attempts >= MAX_ATTEMPTS:
                    _log.warning("telegram: gave up on outbox row %d: %s", row.id, exc)
                    await self.store.failed(row.id, str(exc), final=True)
                    return
                wait = exc.retry_after if exc.retry_after is not None else delay
                delay = min(delay * 2, 60.0)
                await self.store.failed(row.id, str(exc), final=False)
                await self._sleep(wait)
                continue
            await self.store.sent(row.id, message_id)
            self.delivered += 1
            return

    async def _send(self, row: OutboxRow) -> int | None:
        ctx = parse_context(row.context_id)
        where: dict[str, object] = {"chat_id": ctx.chat_id}
        if ctx.thread_id is not None:
            where["message_thread_id"] = ctx.thread_id
        if row.kind == "media" and row.media is not None:
            media = _media.decode(row.media)
            params = {**where, "caption": media.caption}
            result = await self.api.upload(
                media.method, media.field, media.file_name, media.data, params
            )
            return _sent.decode(result).message_id
        if row.kind == "edit" and row.edit_message_id is not None:
            try:
                return await self._text(
                    "editMessageText",
                    {"chat_id": ctx.chat_id, "message_id": row.edit_message_id},
                    row,
                    where,
                )
            except TelegramApiError as exc:
                if exc.says("message is not modified"):
                    return row.edit_message_id
                if not exc.says("message to edit not found"):
                    raise
        return await self._text("sendMessage", where, row, where)

    async def _text(
        self, method: str, params: dict[str, object], row: OutboxRow, where: dict[str, object]
    ) -> int | None:
        if row.html is not None:
            try:
                result = await self.api.call(
                    method, {**params, "text": row.html, "parse_mode": "HTML"}
                )
                return _message_id(result)
            except TelegramApiError as exc:
                if not exc.says("can't parse entities") and not exc.says("message is too long"):
                    raise
                _log.warning(
                    "telegram refused the HTML of row %d (%s); sent as plain text",
                    row.id,
                    exc.description,
                )
        return await self._plain(method, params, where, row.plain or " ")

    async def _plain(
        self, method: str, params: dict[str, object], where: dict[str, object], text: str
    ) -> int | None:
        """Send plain text; if Telegram's limit is lower than ours, in halves (recursively)."""
        try:
            return _message_id(await self.api.call(method, {**params, "text": text}))
        except TelegramApiError as exc:
            if not exc.says("message is too long") or len(text) <= 64:
                raise
        first, *rest = split_plain(text, len(text) // 2 + 1)
        message_id = await self._plain(method, params, where, first)
        for piece in rest:
            await self._plain("sendMessage", where, where, piece)
        return message_id

    async def aclose(self) -> None:
        """Stop delivering (pending rows stay for the next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _message_id(result: msgspec.Raw) -> int | None:
    try:
        return _sent.decode(result).message_id
    except msgspec.DecodeError:
        return None  # `true` for an inline edit
