"""The gateway's in-process API: sessions, turns, cancellation, subscriptions.

The WebSocket server and every channel adapter drive the runtime only through this class,
so the session rules (one active turn per session, per-user limits, ownership) hold for all
of them. Nothing here knows about sockets.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from typing import Protocol

import msgspec

from oxydra.config.schema import GatewayConfig
from oxydra.core.errors import GatewayError
from oxydra.core.ids import new_session_id
from oxydra.core.log import get_logger
from oxydra.core.messages import MediaPart
from oxydra.core.spend import Spend
from oxydra.core.stream import Progress, StreamItem, Text
from oxydra.gateway._approvals import ApprovalBroker
from oxydra.gateway._hub import SessionChannel, Subscriber
from oxydra.gateway._store import SessionRecords
from oxydra.gateway._table import SessionRecord
from oxydra.runtime.api import TurnOutcome, TurnRequest, TurnRunner
from oxydra.wire.gateway import (
    AssistantDelta,
    ErrorFrame,
    ScheduledNotification,
    SessionSummary,
    TurnCancelled,
    TurnCompleted,
    TurnProgress,
    TurnStarted,
    TurnStatus,
    Usage,
    UsageTotals,
)

_log = get_logger(__name__)
TOUCH_EVERY_SECS = 30.0


class RefusedError(GatewayError):
    """A request the rules refuse; `code` is a stable reason for clients."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class NotificationOutbox(Protocol):
    """Keeps notifications for a user with no connected client (the scheduler's store)."""

    async def put(self, user_id: str, frame: ScheduledNotification) -> None:
        """Keep one notification."""
        ...

    async def take(self, user_id: str) -> list[ScheduledNotification]:
        """Remove and return the user's kept notifications, oldest first."""
        ...


def default_session_id(user_id: str) -> str:
    """The deterministic session a hello without a session binds to (Rust-compatible)."""
    return "runtime-" + re.sub(r"[^A-Za-z0-9_-]", "-", user_id)


class GatewayCore:
    """Sessions and turns of every user of this `vm`."""

    def __init__(
        self,
        runner: TurnRunner,
        store: SessionRecords,
        config: GatewayConfig,
        *,
        approval_timeout_secs: float = 300,
        subscriber_capacity: int = 4096,
    ) -> None:
        self.runner = runner
        self.store = store
        self.config = config
        self.approvals = ApprovalBroker(approval_timeout_secs)
        self.subscriber_capacity = subscriber_capacity
        self._channels: dict[str, SessionChannel] = {}
        self._running: defaultdict[str, int] = defaultdict(int)
        self._touched: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self.outbox: NotificationOutbox | None = None

    def load(self) -> dict[str, float]:
        """Gauges for the metrics endpoint: sessions with a client, turns running."""
        return {
            "active_sessions": sum(1 for c in self._channels.values() if c.subscribers),
            "running_turns": sum(self._running.values()),
        }

    # ---- sessions ------------------------------------------------------------------

    async def open_session(
        self,
        user_id: str,
        session_id: str | None = None,
        *,
        create_new: bool = False,
        agent_name: str | None = None,
        display_name: str | None = None,
        channel_origin: str = "tui",
    ) -> SessionChannel:
        """Bind to a session: a new one, a named one (live or stored), or the default one."""
        async with self._lock:
            if create_new:
                return await self._create(
                    user_id, new_session_id(), agent_name, display_name, channel_origin
                )
            if session_id is None:
                sid = default_session_id(user_id)
                found = await self._find(user_id, sid)
                return found or await self._create(
                    user_id, sid, agent_name, display_name, channel_origin
                )
            found = await self._find(user_id, session_id)
            if found is None:
                raise RefusedError(
                    f"session `{session_id}` not found for user `{user_id}`", "session_not_found"
                )
            return found

    async def resolve(self, user_id: str, id_or_prefix: str) -> SessionChannel:
        """A session of the user by exact id or unique prefix."""
        found = await self._find(user_id, id_or_prefix)
        if found:
            return found
        matches = await self.store.find_by_prefix(user_id, id_or_prefix)
        if len(matches) != 1:
            what = "no session" if not matches else f"{len(matches)} sessions"
            raise RefusedError(
                f"{what} of user `{user_id}` match `{id_or_prefix}`", "session_not_found"
            )
        channel = await self._find(user_id, matches[0].session_id)
        assert channel is not None
        return channel

    async def list_sessions(
        self, user_id: str, include_archived: bool = False, include_subagents: bool = False
    ) -> list[SessionSummary]:
        """The user's sessions, most recently active first."""
        records = await self.store.list_sessions(user_id, include_archived=include_archived)
        return [
            msgspec.convert(msgspec.structs.asdict(r), SessionSummary)
            for r in records
            if include_subagents or r.parent_session_id is None
        ]

    async def _find(self, user_id: str, session_id: str) -> SessionChannel | None:
        channel = self._channels.get(session_id)
        if channel is not None:
            return channel if channel.user_id == user_id else None
        record = await self.store.get(session_id)
        if record is None or record.user_id != user_id:
            return None
        channel = self._channel_from(record)
        self._channels[session_id] = channel
        return channel

    async def _create(
        self,
        user_id: str,
        session_id: str,
        agent_name: str | None,
        display_name: str | None,
        channel_origin: str,
    ) -> SessionChannel:
        if await self.store.count_active(user_id) >= self.config.max_sessions_per_user:
            raise RefusedError(
                f"maximum sessions reached (limit: {self.config.max_sessions_per_user})",
                "session_limit",
            )
        record = SessionRecord(
            session_id=session_id,
            user_id=user_id,
            agent_name=agent_name or "default",
            display_name=display_name,
            channel_origin=channel_origin,
        )
        await self.store.create(record)
        channel = self._channel_from(record)
        self._channels[session_id] = channel
        return channel

    @staticmethod
    def _channel_from(record: SessionRecord) -> SessionChannel:
        return SessionChannel(
            user_id=record.user_id,
            session_id=record.session_id,
            agent_name=record.agent_name,
            display_name=record.display_name,
            channel_origin=record.channel_origin,
        )

    # ---- subscriptions -------------------------------------------------------------

    def subscribe(
        self, channel: SessionChannel, last_seq: int | None
    ) -> tuple[Subscriber, list[bytes], bool]:
        """A bounded subscriber plus the frames to replay first (see `_hub`)."""
        subscriber = Subscriber(self.subscriber_capacity)
        replay, gap = channel.subscribe(subscriber, last_seq)
        return subscriber, replay, gap

    # ---- notifications -------------------------------------------------------------

    def attach_outbox(self, outbox: NotificationOutbox) -> None:
        """Keep notifications no client is connected for in `outbox`."""
        self.outbox = outbox

    async def notify(
        self, user_id: str, frame: ScheduledNotification, session_id: str | None = None
    ) -> bool:
        """Send a notification to the user's connected clients; keep it if there are none.

        It goes to `session_id` (where the schedule was created) when a client follows
        that session, else to every session of the user a client follows. Returns whether
        a connected client got it; otherwise it waits in the outbox for the next hello.
        """
        origin = self._channels.get(session_id) if session_id else None
        if origin is not None and origin.user_id == user_id and origin.subscribers:
            targets = [origin]
        else:
            targets = [c for c in self._channels.values() if c.user_id == user_id and c.subscribers]
        for channel in targets:
            channel.publish(frame)
        if not targets and self.outbox is not None:
            await self.outbox.put(user_id, frame)
        return bool(targets)

    async def deliver_pending(self, channel: SessionChannel) -> int:
        """Publish the notifications kept for the channel's user on it (after a hello)."""
        if self.outbox is None:
            return 0
        pending = await self.outbox.take(channel.user_id)
        for frame in pending:
            channel.publish(frame)
        return len(pending)

    # ---- turns ---------------------------------------------------------------------

    def submit_turn(
        self,
        channel: SessionChannel,
        request_id: str,
        turn_id: str,
        prompt: str,
        attachments: tuple[MediaPart, ...] = (),
        *,
        owner: object | None = None,
        traceparent: str | None = None,
    ) -> None:
        """Start a turn, or refuse it: one per session, a bounded number per user.

        `owner` is the client connection that asked; only it may answer the turn's
        approval requests (see `_approvals.py`).
        """
        if channel.active_turn is not None:
            raise RefusedError("an active turn is already running", "turn_active")
        limit = self.config.max_concurrent_turns_per_user
        if self._running[channel.user_id] >= limit:
            raise RefusedError(f"too many concurrent turns (limit: {limit})", "turn_limit")
        self._running[channel.user_id] += 1
        turn = TurnStatus(turn_id=turn_id, state="running")
        channel.active_turn, channel.active_request_id = turn, request_id
        request = TurnRequest(
            user_id=channel.user_id,
            session_id=channel.session_id,
            turn_id=turn_id,
            prompt=prompt,
            attachments=attachments,
            agent_name=channel.agent_name,
            channel=channel.channel_origin,
            traceparent=traceparent[:64] if traceparent else None,
        )
        channel.task = asyncio.create_task(
            self._run_turn(channel, request_id, request, owner),
            name=f"turn-{channel.session_id}-{turn_id}",
        )

    async def _run_turn(
        self,
        channel: SessionChannel,
        request_id: str,
        request: TurnRequest,
        owner: object | None = None,
    ) -> None:
        turn = TurnStatus(turn_id=request.turn_id, state="running")
        channel.publish(TurnStarted(request_id=request_id, session=channel.ref, turn=turn))
        sink = _FrameSink(channel, request_id, turn)
        approver = self.approvals.approver_for(channel, request_id, turn, owner)
        try:
            outcome = await self.runner.run_turn(request, sink, approver)
            channel.publish(self._usage(channel, request_id, request.turn_id, outcome))
            self._finish(channel, request_id, request.turn_id, outcome)
        except asyncio.CancelledError:
            done = TurnStatus(turn_id=request.turn_id, state="cancelled")
            channel.publish(TurnCancelled(request_id=request_id, session=channel.ref, turn=done))
        except Exception as exc:
            _log.exception("turn failed")
            failed = TurnStatus(turn_id=request.turn_id, state="failed")
            channel.publish(
                ErrorFrame(
                    message=f"internal error: {exc}",
                    request_id=request_id,
                    session=channel.ref,
                    turn=failed,
                    code="internal",
                )
            )
        finally:
            channel.active_turn = channel.active_request_id = None
            channel.task = None
            self._running[channel.user_id] -= 1
            await self._touch(channel.session_id)

    def _usage(
        self, channel: SessionChannel, request_id: str, turn_id: str, outcome: TurnOutcome
    ) -> Usage:
        ledger = getattr(self.runner, "ledger", None)
        total = ledger.session(channel.session_id) if ledger is not None else outcome.spend
        return Usage(
            request_id=request_id,
            session=channel.ref,
            turn_id=turn_id,
            turn=usage_totals(outcome.spend),
            total=usage_totals(total),
        )

    @staticmethod
    def _finish(
        channel: SessionChannel, request_id: str, turn_id: str, outcome: TurnOutcome
    ) -> None:
        if outcome.reason == "completed" and outcome.response is not None:
            done = TurnStatus(turn_id=turn_id, state="completed")
            channel.publish(
                TurnCompleted(
                    request_id=request_id, session=channel.ref, turn=done, response=outcome.response
                )
            )
        elif outcome.reason == "cancelled":
            done = TurnStatus(turn_id=turn_id, state="cancelled")
            channel.publish(TurnCancelled(request_id=request_id, session=channel.ref, turn=done))
        else:
            failed = TurnStatus(turn_id=turn_id, state="failed")
            channel.publish(
                ErrorFrame(
                    message=f"turn stopped ({outcome.reason}): {outcome.detail}",
                    request_id=request_id,
                    session=channel.ref,
                    turn=failed,
                    code=outcome.reason,
                )
            )

    async def _touch(self, session_id: str) -> None:
        """Record activity at most every TOUCH_EVERY_SECS per session.

        `last_active_at` orders session lists; it needs no per-turn precision, and a durable
        write per turn would queue a third fsync in front of the next turn.
        """
        now = time.monotonic()
        if now - self._touched.get(session_id, -TOUCH_EVERY_SECS) >= TOUCH_EVERY_SECS:
            self._touched[session_id] = now
            await self.store.touch(session_id)

    def cancel(self, channel: SessionChannel) -> None:
        """Cancel the session's active turn."""
        if channel.task is None:
            raise RefusedError("no active turn to cancel", "no_active_turn")
        channel.task.cancel()

    def cancel_all(self, user_id: str) -> int:
        """Cancel every active turn of a user; returns how many."""
        tasks = [c.task for c in self._channels.values() if c.user_id == user_id and c.task]
        if not tasks:
            raise RefusedError("no active turns to cancel", "no_active_turn")
        for task in tasks:
            task.cancel()
        return len(tasks)

    async def shutdown(self) -> None:
        """Cancel every turn and wait for them to end."""
        tasks = [c.task for c in self._channels.values() if c.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _FrameSink:
    """Maps the runtime's stream items to session frames."""

    def __init__(self, channel: SessionChannel, request_id: str, turn: TurnStatus) -> None:
        self.channel, self.request_id, self.turn = channel, request_id, turn

    async def __call__(self, item: StreamItem) -> None:
        match item:
            case Text(text=text) if text:
                self.channel.publish(
                    AssistantDelta(
                        request_id=self.request_id,
                        session=self.channel.ref,
                        turn=self.turn,
                        delta=text,
                    )
                )
            case Progress():
                self.channel.publish(
                    TurnProgress(
                        request_id=self.request_id,
                        session=self.channel.ref,
                        turn=self.turn,
                        progress=item,
                    )
                )
            case _:
                pass


def usage_totals(spend: Spend) -> UsageTotals:
    """A `Spend` as the `usage` frame carries it; unpriced spend is unknown, not 0."""
    return UsageTotals(
        calls=spend.calls,
        input_tokens=spend.prompt_tokens,
        output_tokens=spend.completion_tokens,
        cost_usd=round(spend.cost_usd, 6) if spend.priced else None,
    )
