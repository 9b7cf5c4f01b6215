"""The Telegram channel: Bot API long polling in, the gateway's sessions, answers out.

Theory of operation:
1. Ingress: each update is decided before anything else: a sender who is no one's
   Telegram id is refused silently and audited; a known person's message is stored together
   with the new offset (`ChannelStore.accept`), then handled. Commands run at once (so
   `/cancel` and `/approve` reach a running turn); prompts queue per (person, chat context)
   and run one at a time. A message arriving while its queue is busy gets a short "still
   working" note and waits its turn.
2. Sessions: a person's chat context is bound to a session in `person_sessions`. Unbound,
   it gets a session of a deterministic id (UUIDv5 of person and context), so a restart
   lands in the same session even if the binding was never written; `/new` and `/switch`
   rebind it, to any session of that person, made on any channel.
3. Turns go through `GatewayCore` like every other client's. The channel follows each
   session it uses (a gateway subscription); `listen()` yields those sessions' frames, and
   the delivery loop turns them into Telegram messages: deltas edit the working message,
   the final answer goes to the durable outbox with the inbox row marked answered in the
   same transaction, notifications go to the chats bound to the session.
4. Provenance: a message from a person not marked trusted, or any forwarded message, is
   not the session owner's own words: the turn carries `untrusted("chat", ...)`, so while it
   is in context a high-impact tool call needs a yes (`/approve`) or is refused.
5. After a restart the inbox rows not answered are run again (their working message is
   reused), and the outbox sends what is still pending.
6. Hosts sharing one store (PostgreSQL) each run the channel, but only the holder of the
   bot's lease (`lease`) polls, answers and delivers: two long polls on one bot end each
   other (Telegram's 409) and two outbox senders would send a piece twice. The others wait
   in standby (healthy) and take over once the holder stops or its lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import msgspec

from oxydra.channels._audit import SenderAudit
from oxydra.channels._follow import SessionFollower
from oxydra.channels._store import ChannelStore, InboxRow, OutPiece
from oxydra.channels.base import ChannelCapabilities, ChannelHealth
from oxydra.channels.telegram._api import BotApi
from oxydra.channels.telegram._inbound import Inbound
from oxydra.channels.telegram._outbox import MediaPayload, OutboxSender
from oxydra.channels.telegram._poll import Poller
from oxydra.channels.telegram._view import BUSY, WORKING, AnswerView
from oxydra.config.people import People, PersonView
from oxydra.config.runner_schema import TelegramChannel as TelegramConfig
from oxydra.core.errors import ChannelError, OxydraError
from oxydra.core.log import get_logger
from oxydra.core.messages import MediaPart
from oxydra.core.provenance import Label
from oxydra.gateway._hub import SessionChannel
from oxydra.gateway.core import GatewayCore, RefusedError
from oxydra.memory import Memory
from oxydra.wire import gateway as g
from oxydra.wire.telegram import (
    BOT_COMMANDS,
    ChatContext,
    Command,
    TelegramApiError,
    TgMessage,
    TgUpdate,
    TgUser,
    parse_command,
    parse_context,
)

_log = get_logger(__name__)
_NS = uuid.UUID("6f1d0c53-9a43-4f0e-9d7b-8f1a2b3c4d5e")
_encode_message = msgspec.json.Encoder().encode
_decode_message = msgspec.json.Decoder(TgMessage)
_me = msgspec.json.Decoder(TgUser)
_sent = msgspec.json.Decoder(dict[str, Any])
HELP = (
    "Send a message and the agent answers here.\n"
    "/new [name] - a new session · /sessions - your sessions · /switch <id> - go to one\n"
    "/cancel - stop the running answer · /cancelall - stop all of yours\n"
    "/status - session, trust and channel health · /approve, /deny - answer a tool question"
)


class _Turn(msgspec.Struct, kw_only=True):
    view: AnswerView
    person: str
    context_id: str


class TelegramChannel:
    """The `Channel` for Telegram (see the module docstring)."""

    name = "telegram"
    capabilities = ChannelCapabilities(
        media_types=("photo", "audio", "document", "voice", "video"), max_message_chars=4096
    )

    def __init__(
        self,
        config: TelegramConfig,
        token: str,
        people: People,
        memory: Memory,
        workspace: Path,
        *,
        edit_every_secs: float = 1.5,
        stall_factor: float = 3.0,
        follow_idle_secs: float = 600.0,
        lease: Callable[[str], AbstractAsyncContextManager[None]] | None = None,
    ) -> None:
        self.config, self.people, self.memory = config, people, memory
        self.lease = lease
        self.standby = False
        self._held = contextlib.AsyncExitStack()
        self.capabilities = ChannelCapabilities(
            media_types=TelegramChannel.capabilities.media_types,
            max_message_chars=config.max_message_length,
        )
        self.api = BotApi(config.api_base_url, token)
        self.inbound = Inbound(self.api)
        self.audit = SenderAudit(workspace / ".oxydra" / "sender_audit.log")
        self.edit_every_secs, self.stall_factor = edit_every_secs, stall_factor
        self.follow_idle_secs = follow_idle_secs
        self._used: dict[str, float] = {}  # session id -> when a turn of ours last ended
        self.bot_username: str | None = None
        self.store: ChannelStore | None = None
        self.core: GatewayCore | None = None
        self.poller: Poller | None = None
        self.outbox: OutboxSender | None = None
        self.fatal: str | None = None
        self.ready = asyncio.Event()
        self.follower: SessionFollower | None = None
        self._turns: dict[tuple[str, str], _Turn] = {}
        self._queues: dict[tuple[str, str], deque[InboxRow]] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._busy: set[tuple[str, str]] = set()
        self._approvals: dict[tuple[str, str], list[str]] = {}
        self._owners: dict[tuple[str, str], object] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._boot_task: asyncio.Task[None] | None = None

    # ---- lifecycle ---------------------------------------------------------------

    def start(self, core: GatewayCore) -> None:
        """Start in the background once the gateway is up (a bad token is reported, and
        the rest of `vm` keeps serving)."""
        self.core = core
        self.follower = SessionFollower(core)
        self._boot_task = asyncio.create_task(self._boot(core), name="telegram-boot")

    async def _boot(self, core: GatewayCore) -> None:
        delay = 1.0
        while True:
            try:
                me = _me.decode(await self.api.call("getMe"))
                break
            except TelegramApiError as exc:
                if exc.error_code in (401, 404):
                    self.fatal = f"Telegram refused the bot token ({exc.description})"
                    _log.error("telegram channel not started: %s", self.fatal)
                    self.ready.set()
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        self.bot_username = me.username
        if self.lease is not None:  # hosts sharing a store: one polls, the others wait
            self.standby = True
            await self._held.enter_async_context(self.lease(f"channel:telegram:{me.id}"))
            self.standby = False
        store = self.store = ChannelStore(self.memory, f"telegram:{me.id}")
        with contextlib.suppress(TelegramApiError):
            await self.api.call("deleteWebhook", {"drop_pending_updates": False})
            commands = [{"command": c, "description": d} for c, d in BOT_COMMANDS]
            await self.api.call("setMyCommands", {"commands": commands})
        self.outbox = OutboxSender(self.api, store)
        core.add_notification_route(self._route_notification)
        self._spawn(self._deliver(), "telegram-deliver")
        self._spawn(self._janitor(), "telegram-janitor")
        for row in await store.open_messages():
            await self._dispatch(row, resumed=True)
        self.outbox.start()
        self.poller = Poller(
            self.api,
            timeout_secs=self.config.polling_timeout_secs,
            offset=store.offset,
            on_update=self._on_update,
            on_bad=self._on_bad,
            stall_factor=self.stall_factor,
        )
        self.poller.start()
        self.ready.set()

    async def aclose(self) -> None:
        """Stop polling and delivering; stored work resumes at the next start."""
        if self._boot_task is not None:
            self._boot_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._boot_task
        if self.poller is not None:
            await self.poller.aclose()
        if self.outbox is not None:
            await self.outbox.aclose()
        tasks = [*self._tasks, *self._workers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.follower is not None:
            await self.follower.aclose()
        await self._held.aclose()  # another host may poll now
        await self.api.aclose()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- the Channel contract ----------------------------------------------------

    async def send(self, frame: g.ClientFrame) -> None:
        """Deliver a session-scoped client frame (a cancel) to the gateway."""
        assert self.core is not None and self.follower is not None
        match frame:
            case g.CancelActiveTurn(session_id=session_id) if (
                channel := self.follower.session(session_id)
            ) is not None:
                self.core.cancel(channel)
            case _:
                raise ChannelError(f"the telegram channel does not send {frame.TYPE} frames")

    async def listen(self) -> AsyncIterator[g.ServerFrame]:
        """The frames of every session this channel follows, in arrival order (the channel's
        own delivery loop is their one reader once it started)."""
        assert self.follower is not None
        while True:
            yield (await self.follower.frames.get())[1]

    async def health_check(self) -> ChannelHealth:
        """Unhealthy when the token was refused or polling made no progress."""
        if self.fatal is not None:
            return ChannelHealth(healthy=False, detail=self.fatal)
        if self.standby:
            return ChannelHealth(healthy=True, detail="standby: another host polls this bot")
        if self.poller is None or self.store is None:
            return ChannelHealth(healthy=False, detail="starting")
        health = self.poller.health
        if health.fatal is not None:
            return ChannelHealth(healthy=False, detail=health.fatal)
        idle = time.monotonic() - health.last_progress
        counts = await self.store.counts()
        detail = (
            f"last poll {idle:.0f}s ago; outbox pending {counts['pending']}, "
            f"failed {counts['failed']}; inbox open {counts['inbox_open']}; "
            f"poll failures {health.failures}; watchdog restarts {health.restarts}"
        )
        return ChannelHealth(healthy=idle < self.poller.stall_secs, detail=detail)

    # ---- ingress -----------------------------------------------------------------

    async def _on_bad(self, update_id: int, reason: str) -> None:
        _log.warning("telegram: skipped malformed update %d: %s", update_id, reason)
        assert self.store is not None
        await self.store.accept(update_id, None, "", b"")

    async def _on_update(self, update: TgUpdate) -> None:
        assert self.store is not None
        message = update.message
        if message is None or message.from_ is None:
            await self.store.accept(update.update_id, None, "", b"")
            return
        context = ChatContext.of(message)
        person = self.people.by_telegram(str(message.from_.id))
        if person is None:
            self.audit.refuse(
                "telegram",
                str(message.from_.id),
                "sender not in authorized list",
                f"chat_id={message.chat.id}",
            )
            await self.store.accept(update.update_id, None, "", b"")
            return
        payload = _encode_message(message)
        if not await self.store.accept(update.update_id, person.id, context.key, payload):
            return  # delivered again: already stored
        row = InboxRow(
            update_id=update.update_id,
            person=person.id,
            context_id=context.key,
            payload=payload,
            state="pending",
        )
        await self._dispatch(row)

    async def _dispatch(self, row: InboxRow, resumed: bool = False) -> None:
        message = _decode_message.decode(row.payload)
        command = parse_command(message.text or "", self.bot_username)
        if command is not None:
            if resumed:
                await self._reply(
                    row,
                    f"/{command.name} arrived while the bot restarted; "
                    "send it again if you still want it.",
                )
            else:
                self._spawn(self._command(row, command), f"telegram-command-{row.update_id}")
            return
        key = (row.person, row.context_id)
        queue = self._queues.setdefault(key, deque())
        if key in self._busy and not queue and not resumed and message.media_group_id is None:
            with contextlib.suppress(ChannelError):  # said once per wait, not per message
                await self._note(row.context_id, BUSY)
        queue.append(row)
        worker = self._workers.get(key)
        if worker is None or worker.done():
            self._workers[key] = asyncio.create_task(self._work(key), name=f"telegram-{key}")

    async def _work(self, key: tuple[str, str]) -> None:
        queue = self._queues[key]
        while queue:
            row = queue.popleft()
            self._busy.add(key)
            try:
                await self._answer(row)
            except OxydraError as exc:
                _log.exception("telegram: message %d not answered", row.update_id)
                with contextlib.suppress(OxydraError):
                    await self._reply(row, f"⚠️ {exc}")
            finally:
                self._busy.discard(key)

    async def _reply(self, row: InboxRow, text: str, placeholder: int | None = None) -> None:
        """Answer a stored message with plain text (durably)."""
        assert self.store is not None and self.outbox is not None
        piece = (
            OutPiece(kind="edit", plain=text, edit_message_id=placeholder)
            if placeholder
            else OutPiece(kind="send", plain=text)
        )
        await self.store.answer(row.update_id, row.context_id, [piece])
        self.outbox.wake()

    async def _note(self, context_id: str, text: str) -> int | None:
        """A best-effort message (working, busy): returns its id, None when it failed."""
        ctx = parse_context(context_id)
        params: dict[str, Any] = {"chat_id": ctx.chat_id, "text": text}
        if ctx.thread_id is not None:
            params["message_thread_id"] = ctx.thread_id
        try:
            result = _sent.decode(await self.api.call("sendMessage", params))
        except TelegramApiError as exc:
            if not exc.retryable:
                raise ChannelError(
                    f"cannot write to chat {ctx.chat_id}: {exc.description}"
                ) from exc
            return None
        message_id = result.get("message_id")
        return message_id if isinstance(message_id, int) else None

    # ---- sessions ----------------------------------------------------------------

    async def _session(self, person: str, context_id: str) -> SessionChannel:
        assert self.core is not None and self.store is not None
        bound = await self.store.session_for(person, context_id)
        if bound is not None:
            with contextlib.suppress(RefusedError):
                channel = await self.core.open_session(person, bound)
                self._follow(channel)
                return channel
        session_id = str(uuid.uuid5(_NS, f"{person}\x00telegram\x00{context_id}"))
        channel = await self.core.open_named(
            person, session_id, channel_origin="telegram", display_name=f"telegram {context_id}"
        )
        await self.store.bind(person, context_id, session_id)
        self._follow(channel)
        return channel

    def _follow(self, channel: SessionChannel) -> None:
        assert self.follower is not None
        self.follower.follow(channel)
        self._used[channel.session_id] = time.monotonic()

    async def _janitor(self) -> None:
        """Stop following sessions idle for `follow_idle_secs`, so the gateway can evict
        them; notifications still reach their chats through `_route_notification`."""
        assert self.follower is not None
        while True:
            await asyncio.sleep(min(60.0, self.follow_idle_secs))
            busy = {session_id for session_id, _ in self._turns}
            cutoff = time.monotonic() - self.follow_idle_secs
            for session_id in self.follower.session_ids:
                channel = self.follower.session(session_id)
                idle = channel is not None and channel.active_turn is None
                if idle and session_id not in busy and self._used.get(session_id, 0) < cutoff:
                    await self.follower.unfollow(session_id)
                    self._used.pop(session_id, None)

    async def _route_notification(
        self, user_id: str, frame: g.ScheduledNotification, session_id: str
    ) -> bool:
        """Deliver a notification of a session not followed now to its bound chats."""
        if self.store is None:
            return False
        contexts = [c for p, c in await self.store.contexts_of(session_id) if p == user_id]
        for context_id in contexts:
            await self._queue_text(context_id, frame.message)
        return bool(contexts)

    async def _queue_text(self, context_id: str, text: str) -> None:
        assert self.store is not None and self.outbox is not None
        await self.store.answer(None, context_id, [OutPiece(kind="send", plain=text)])
        self.outbox.wake()

    # ---- turns -------------------------------------------------------------------

    async def _answer(self, row: InboxRow) -> None:
        assert self.core is not None and self.store is not None and self.outbox is not None
        message = _decode_message.decode(row.payload)
        person = self.people.get(row.person)
        if person is None:  # removed from the config since the message was stored
            await self.store.answer(row.update_id, row.context_id, [])
            return
        refusal = self.inbound.refusal(message)
        if refusal is not None:
            await self._reply(row, refusal) if refusal else await self.store.answer(
                row.update_id, row.context_id, []
            )
            return
        budget = await self._budget(person)
        if budget is not None and budget <= 0:
            await self._reply(
                row,
                f"Today's budget for {person.display_name} is used up "
                "(it starts again at 00:00 UTC).",
            )
            return
        channel = await self._session(person.id, row.context_id)
        try:
            placeholder = row.placeholder_id or await self._note(row.context_id, WORKING)
        except ChannelError as exc:  # the chat is gone: nothing to answer into
            _log.warning("telegram: %s; message %d dropped", exc, row.update_id)
            await self.store.answer(row.update_id, row.context_id, [])
            return
        await self.store.mark_running(row.update_id, channel.session_id, placeholder)
        prompt, parts, label = await self.inbound.prompt(message, person)
        ctx = parse_context(row.context_id)

        async def edit(message_id: int, text: str) -> None:
            await self.api.call(
                "editMessageText", {"chat_id": ctx.chat_id, "message_id": message_id, "text": text}
            )

        view = AnswerView(
            placeholder,
            edit,
            limit=self.config.max_message_length,
            edit_every_secs=self.edit_every_secs,
        )
        turn_id = f"tg-{row.update_id}-{uuid.uuid4().hex[:6]}"
        self._turns[(channel.session_id, turn_id)] = _Turn(
            view=view, person=person.id, context_id=row.context_id
        )
        try:
            await self._submit(channel, turn_id, prompt, parts, label, person, budget, row)
            await view.done.wait()
        finally:
            self._turns.pop((channel.session_id, turn_id), None)
            self._used[channel.session_id] = time.monotonic()
        await self.store.answer(row.update_id, row.context_id, view.pieces())
        self.outbox.wake()

    async def _submit(
        self,
        channel: SessionChannel,
        turn_id: str,
        prompt: str,
        parts: tuple[MediaPart, ...],
        label: Label | None,
        person: PersonView,
        budget: float | None,
        row: InboxRow,
    ) -> None:
        assert self.core is not None
        noted = False
        while True:
            try:
                self.core.submit_turn(
                    channel,
                    turn_id,
                    turn_id,
                    prompt,
                    parts,
                    label=label,
                    owner=self._owner(person.id, row.context_id),
                    max_cost_usd=budget,
                    tools=person.tools,
                    media_types=self.capabilities.media_types,
                )
                return
            except RefusedError as exc:
                if exc.code not in ("turn_active", "turn_limit"):
                    raise
            if not noted:  # the session runs a turn from elsewhere (the TUI, another chat)
                noted = True
                with contextlib.suppress(ChannelError):
                    await self._note(row.context_id, BUSY)
            await asyncio.sleep(0.2)

    def _owner(self, person: str, context_id: str) -> object:
        """The approval owner of a chat context: only `/approve` from there answers."""
        return self._owners.setdefault((person, context_id), object())

    async def _budget(self, person: PersonView) -> float | None:
        if person.max_cost_usd_per_day is None:
            return None
        assert self.store is not None
        return person.max_cost_usd_per_day - await self.store.spent_today(person.id)

    # ---- commands ----------------------------------------------------------------

    async def _command(self, row: InboxRow, command: Command) -> None:
        try:
            text = await self._run_command(row, command)
        except OxydraError as exc:
            text = f"⚠️ {exc.message}"
        await self._reply(row, text)

    async def _run_command(self, row: InboxRow, command: Command) -> str:
        assert self.core is not None and self.store is not None
        person, context_id = row.person, row.context_id
        match command.name:
            case "new":
                channel = await self.core.open_session(
                    person,
                    create_new=True,
                    display_name=command.argument or None,
                    channel_origin="telegram",
                    request_id=f"tg-{row.update_id}",
                )
                await self.store.bind(person, context_id, channel.session_id)
                self._follow(channel)
                name = f" “{command.argument}”" if command.argument else ""
                return f"🆕 New session {channel.session_id[:8]}{name}; this chat now uses it."
            case "sessions":
                current = await self.store.session_for(person, context_id)
                sessions = await self.core.list_sessions(person)
                lines = [
                    f"{'•' if s.session_id == current else ' '} {s.session_id[:8]} "
                    f"{s.display_name or ''} ({s.channel_origin})"
                    for s in sessions[:30]
                ]
                return "Your sessions:\n" + "\n".join(lines) if lines else "No sessions yet."
            case "switch":
                if not command.argument:
                    return "Usage: /switch <session id or prefix> (see /sessions)"
                channel = await self.core.resolve(person, command.argument)
                await self.store.bind(person, context_id, channel.session_id)
                self._follow(channel)
                return f"↪️ This chat now uses session {channel.session_id[:8]}."
            case "cancel":
                channel = await self._session(person, context_id)
                self.core.cancel(channel)
                return "⏹ Cancelling the running answer."
            case "cancelall":
                count = self.core.cancel_all(person)
                return f"⏹ Cancelling {count} running answer(s)."
            case "status":
                return await self._status(person, context_id)
            case "approve" | "deny":
                return self._answer_approval(person, context_id, command.name == "approve")
        return HELP

    async def _status(self, person: str, context_id: str) -> str:
        assert self.core is not None
        channel = await self._session(person, context_id)
        taint = await self.core.taint_sources(channel)
        health = await self.health_check()
        running = "running" if channel.active_turn is not None else "idle"
        trust = "trusted" if taint is None else "untrusted: " + ", ".join(taint)
        return (
            f"Session {channel.session_id[:8]} ({running}); context {trust}.\n"
            f"{_spent(self.core.runner, channel.session_id)}\n"
            f"Telegram: {'ok' if health.healthy else 'unhealthy'} - {health.detail}"
        )

    def _answer_approval(self, person: str, context_id: str, approved: bool) -> str:
        """Answer this chat's oldest pending question.

        Only a trusted person can say yes: a guest whose own words tainted the turn saying
        yes to it would make the gate a formality, so their yes is taken as a no.
        """
        assert self.core is not None
        view = self.people.get(person)
        refused = approved and (view is None or not view.trusted)
        pending = self._approvals.get((person, context_id)) or []
        while pending:
            approval_id = pending.pop(0)
            answer = self.core.approvals.answer(
                person, approval_id, approved and not refused,
                answerer=self._owner(person, context_id),
            )  # fmt: skip
            if answer == "answered" and refused:
                return "🚫 Only the owner can approve tool calls; this one was refused."
            if answer == "answered":
                return "✅ Approved." if approved else "🚫 Denied."
        return "There is no tool call waiting for an answer here."

    # ---- egress ------------------------------------------------------------------

    async def _deliver(self) -> None:
        assert self.follower is not None
        while True:
            session_id, frame = await self.follower.frames.get()
            try:
                await self._render(session_id, frame)
            except (OxydraError, msgspec.MsgspecError):
                _log.exception("telegram: could not deliver a %s frame", frame.TYPE)

    async def _render(self, session_id: str, frame: g.ServerFrame) -> None:
        session = getattr(frame, "session", None)
        turn_id = (  # our turns use the turn id as request id: a file frame carries only that
            getattr(frame, "turn_id", None)
            or getattr(getattr(frame, "turn", None), "turn_id", None)
            or getattr(frame, "request_id", None)
        )
        turn = self._turns.get((session.session_id, turn_id)) if session and turn_id else None
        match frame:
            case g.AssistantDelta() if turn is not None:
                turn.view.delta(frame.delta)
            case g.TurnProgress() if turn is not None:
                turn.view.note(frame.progress.message)
            case g.TurnCompleted() if turn is not None:
                turn.view.finish("completed", frame.response.message.text or turn.view.text)
            case g.TurnCancelled() if turn is not None:
                partial = turn.view.text.strip()
                turn.view.finish(
                    "cancelled", f"{partial}\n\n⏹ Cancelled." if partial else "⏹ Cancelled."
                )
            case g.ErrorFrame() if turn is not None and frame.turn is not None:
                turn.view.finish("failed", f"⚠️ {frame.message}")
            case g.Usage() if session is not None and frame.turn.cost_usd:
                assert self.store is not None
                await self.store.add_spend(session.user_id, frame.turn.cost_usd)
            case g.ApprovalRequest() if turn is not None:
                await self._ask(turn, frame)
            case g.ScheduledNotification():
                await self._notify(session_id, frame)
            case g.MediaAttachment() if turn is not None:
                await self._media(turn.context_id, frame.attachment)

    async def _ask(self, turn: _Turn, frame: g.ApprovalRequest) -> None:
        assert self.store is not None and self.outbox is not None
        self._approvals.setdefault((turn.person, turn.context_id), []).append(frame.approval_id)
        args = msgspec.json.encode(frame.arguments).decode()[:1500]
        why = f"\nWhy: {frame.reason}" if frame.reason else ""
        sources = (
            f"\nUntrusted content in play: {', '.join(frame.taint_sources)}"
            if (frame.taint_sources)
            else ""
        )
        text = (
            f"🔐 The agent wants to run {frame.tool_name} {args}{why}{sources}\n"
            f"Reply /approve or /deny within {frame.expires_in_secs}s."
        )
        await self.store.answer(None, turn.context_id, [OutPiece(kind="send", plain=text)])
        self.outbox.wake()

    async def _notify(self, session_id: str, frame: g.ScheduledNotification) -> None:
        """A schedule's message goes to every chat bound to the session it was made in."""
        assert self.store is not None
        for _person, context_id in await self.store.contexts_of(session_id):
            await self._queue_text(context_id, frame.message)

    async def _media(self, context_id: str, media: g.MediaFile) -> None:
        assert self.store is not None and self.outbox is not None
        method, field = {
            "photo": ("sendPhoto", "photo"),
            "audio": ("sendAudio", "audio"),
            "voice": ("sendVoice", "voice"),
            "video": ("sendVideo", "video"),
        }.get(media.media_type, ("sendDocument", "document"))
        payload = MediaPayload(
            method=method,
            field=field,
            data=media.data,
            caption=media.caption,
            file_name=media.file_name or Path(media.file_path).name,
        )
        piece = OutPiece(kind="media", media=msgspec.json.encode(payload))
        await self.store.answer(None, context_id, [piece])
        self.outbox.wake()


def _spent(runner: object, session_id: str) -> str:
    """The session's spend so far, for `/status` (the gateway's `usage` frame has the same)."""
    ledger = getattr(runner, "ledger", None)
    if ledger is None:
        return "Spent: not tracked here."
    spend = ledger.session(session_id)
    calls = f"{spend.calls} model call{'' if spend.calls == 1 else 's'}"
    tokens = f"{spend.total_tokens:,} tokens"
    if spend.calls and spend.priced:
        return f"Spent: ${spend.cost_usd:.4f} ({tokens}, {calls})."
    return f"Spent: {tokens} over {calls} (no price known for this model)."
