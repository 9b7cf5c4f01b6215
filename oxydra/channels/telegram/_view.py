"""One answer as the chat sees it: a "working" message edited in place, then the final text.

Streaming edits are cosmetic and not durable: at most one edit per `edit_every_secs`, the
text shown is plain (a half-written Markdown construct would be refused as HTML) and cut to
the message limit. The final answer is rendered and split by `oxydra.wire.telegram_format`
and handed to the durable outbox: its first piece replaces the working message, the rest
follow as new messages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from oxydra.channels._store import OutPiece
from oxydra.wire.telegram import TelegramApiError
from oxydra.wire.telegram_format import split_markdown

WORKING = "⏳ Working…"
BUSY = "⏳ I'm still working on your previous message; this one is queued and comes next."


class AnswerView:
    """Accumulates one turn's text and progress; edits the working message now and then."""

    def __init__(
        self,
        placeholder: int | None,
        edit: Callable[[int, str], Awaitable[None]],
        *,
        limit: int,
        edit_every_secs: float = 1.5,
    ) -> None:
        self.placeholder = placeholder
        self._edit = edit
        self.limit = limit
        self.edit_every_secs = edit_every_secs
        self.text = ""
        self.progress = ""
        self.done = asyncio.Event()
        self.outcome: str = "completed"
        self.final: str | None = None
        self._shown = WORKING
        self._last_edit = 0.0
        self._pending: asyncio.TimerHandle | None = None
        self._editing: asyncio.Task[None] | None = None

    def delta(self, text: str) -> None:
        """More answer text."""
        self.text += text
        self._schedule()

    def note(self, progress: str) -> None:
        """A progress line (`Calling provider`, `Executing tools: ...`)."""
        self.progress = progress
        self._schedule()

    def finish(self, outcome: str, final: str | None) -> None:
        """The turn ended (`completed`, `cancelled`, `failed`) with `final` text."""
        self.outcome, self.final = outcome, final
        if self._pending is not None:
            self._pending.cancel()
        self.done.set()

    def _render(self) -> str:
        body = self.text.strip() or WORKING
        if self.progress and not self.text.strip():
            body = f"{WORKING}\n{self.progress}"
        if len(body) > self.limit:
            body = body[: self.limit - 1] + "…"
        return body

    def _schedule(self) -> None:
        if self.placeholder is None or self.done.is_set() or self._pending is not None:
            return
        wait = max(0.0, self._last_edit + self.edit_every_secs - time.monotonic())
        self._pending = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self._pending = None
        if self.done.is_set() or (self._editing is not None and not self._editing.done()):
            return
        text = self._render()
        if text == self._shown:
            return
        self._shown, self._last_edit = text, time.monotonic()
        self._editing = asyncio.create_task(self._safe_edit(text))

    async def _safe_edit(self, text: str) -> None:
        assert self.placeholder is not None
        try:
            await self._edit(self.placeholder, text)
        except TelegramApiError:
            pass  # cosmetic: a 429 or "not modified" mid-stream never stops the answer

    def pieces(self) -> list[OutPiece]:
        """The final answer as outbox pieces (see the module docstring)."""
        text = self.final if self.final is not None else self.text
        if not text.strip():
            text = "(no answer)"
        parts = split_markdown(text, self.limit)
        out: list[OutPiece] = []
        for i, part in enumerate(parts):
            if i == 0 and self.placeholder is not None:
                out.append(
                    OutPiece(
                        kind="edit",
                        html=part.html,
                        plain=part.plain,
                        edit_message_id=self.placeholder,
                    )
                )
            else:
                out.append(OutPiece(kind="send", html=part.html, plain=part.plain))
        return out
