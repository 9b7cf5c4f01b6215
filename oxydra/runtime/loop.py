"""The agent runtime: the turn loop that streams the model, runs tools and keeps budgets.

Phases of a turn: prepare (history, window, summary) → call model (`calls.py`: stream,
forward items, charge the turn) → decide (`decide.py`, pure) → run tools (`toolrun.py`) →
append → repeat. Memory is retrieved once per turn, for the user's question. Every exit path —
final answer, budget stop, provider error, deadline, cancel — leaves the history valid: no
tool call without a result, everything appended handed to the store.

The runtime is shared by every session of a guest, so it keeps no per-turn state of its
own: a turn's state is its `TurnState` and its `Conversation`; what a client sees of a turn's
phase comes as `Progress` items on the sink.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import replace

import msgspec

from oxydra import _phases as phases
from oxydra.config.schema import RuntimeConfig
from oxydra.core.errors import ProviderError
from oxydra.core.ids import ModelId, ProviderId
from oxydra.core.log import get_logger, span
from oxydra.core.messages import (
    Context,
    FunctionDecl,
    MediaPart,
    Message,
    Response,
    TextPart,
    ToolCall,
)
from oxydra.core.provenance import Label, merge
from oxydra.core.stream import (
    Progress,
    ProgressKind,
    ProviderCall,
    RollingSummary,
    StreamItem,
    ToolExecution,
    ToolHeartbeat,
)
from oxydra.providers import Provider
from oxydra.runtime import decide as d
from oxydra.runtime.api import Approver, EventSink, TurnOutcome, TurnRequest
from oxydra.runtime.budget import (
    ContextTooSmallError,
    WindowPlan,
    history_units,
    plan_window,
    refuse_by_bytes,
)
from oxydra.runtime.calls import TurnCalls
from oxydra.runtime.conversation import (
    Conversation,
    ConversationStore,
    Summary,
    closing_results,
    dangling_calls,
    repair,
)
from oxydra.runtime.ledger import CostLedger
from oxydra.runtime.summary import choose_cut, write_summary
from oxydra.runtime.tokens import (
    TokenCounter,
    encoding_for_model,
    load_counter,
    message_tokens,
    tools_tokens,
)
from oxydra.runtime.toolrun import ToolExecutor, result_messages, run_calls, with_heartbeat
from oxydra.runtime.turnlock import SessionLocks
from oxydra.security.taint import context_label, for_model
from oxydra.tools import ToolExecutionContext

_log = get_logger(__name__)
NEEDS_A_CHAT = frozenset({"send_media"})  # offered only to a turn whose channel shows files
# offered once the session has loaded a skill: they act on skills (the authoring skill's
# instructions use the last two), and their schemas are 1.3 KB of every request before that
NEEDS_A_LOADED_SKILL = frozenset({"skill_read", "skill_create", "skill_update"})
_json = msgspec.json.Encoder()

Retriever = Callable[[str, str, str], Awaitable[Message | None]]
"""(user_id, session_id, query) -> a system message of retrieved memory, or None."""


class AgentRuntime:
    """Runs turns for any number of sessions; per-session state lives in `Conversation`s."""

    def __init__(
        self,
        *,
        provider: Provider,
        tools: ToolExecutor,
        config: RuntimeConfig,
        provider_id: str,
        model: str,
        system_prompt: str,
        store: ConversationStore | None = None,
        ledger: CostLedger | None = None,
        retriever: Retriever | None = None,
        counter: TokenCounter | None = None,
        session_prompt: Callable[[], str] | None = None,
        turn_locks: SessionLocks | None = None,
    ) -> None:
        self.provider = provider
        self.tools = tools
        self.config = config
        self.provider_id = provider_id
        self.model = model
        self.system_prompt = system_prompt
        self.session_prompt = session_prompt
        self.store = store
        self.ledger = ledger or CostLedger()
        self.retriever = retriever
        self.limits = d.Limits(
            max_turns=config.max_turns,
            max_tokens=config.max_tokens,
            max_cost_usd=config.max_cost_usd,
            max_repeated_tool_calls=config.max_repeated_tool_calls,
            max_tool_retries=config.max_tool_retries,
        )
        self._counter = counter
        self._conversations: dict[str, Conversation] = {}
        self.turn_locks = turn_locks or SessionLocks()
        self._taint_key = os.urandom(16)  # keys the untrusted-content marker ids

    # ---- sessions ------------------------------------------------------------------

    async def conversation(self, session_id: str, user_id: str) -> Conversation:
        """The session's conversation: in memory, else restored from the store, else new."""
        found = self._conversations.get(session_id)
        if found is not None:
            return found
        conversation = Conversation(session_id=session_id, user_id=user_id)
        if self.session_prompt is not None:  # read once as the session starts (persona)
            conversation.system_prompt = self.session_prompt()
        if self.store is not None:
            with phases.phase("persistence"):
                history, summary = await self.store.load(session_id, user_id)
            fixed = repair(history)
            conversation.history, conversation.summary = fixed, summary
            conversation.stored = len(history)
        self._conversations[session_id] = conversation
        return conversation

    def forget(self, session_id: str) -> bool:
        """Drop an idle session's in-memory state (it is loaded from the store when needed).

        A session whose turn holds its lock is kept; returns whether it was dropped.
        """
        if self.turn_locks.busy(session_id):
            return False
        self.turn_locks.forget(session_id)
        self.ledger.forget(session_id)
        return self._conversations.pop(session_id, None) is not None

    async def deliver(self, session_id: str, user_id: str, message: Message) -> None:
        """Append a message a turn did not produce (a background agent's report) to a
        session, between turns: it holds the session's lock, so it never lands inside one,
        and the next turn sees it."""
        async with self.turn_locks.hold(session_id):
            conversation = await self.conversation(session_id, user_id)
            conversation.history.append(message)
            await self._persist(conversation)

    async def _persist(self, conversation: Conversation) -> None:
        """Store what is not stored yet; durable when this returns."""
        await self._persist_soon(conversation)
        await self._stored(conversation)

    async def _persist_soon(self, conversation: Conversation) -> None:
        """Start storing what is not stored yet; return once the write is handed to the
        store (so it comes before any later read of it), not once it is durable.

        The prompt and the tool results are written while the next model call connects and
        waits for its first byte, not before it: the write is off the critical path of the
        first delta, yet the sink (`_AfterStored`) shows no item of the answer before the
        write is durable, and the turn ends only after it. Writes stay in order (each waits
        for the one before); one that fails hands its messages back to the next.
        """
        pending = conversation.unstored()
        if self.store is None or not pending:
            conversation.stored = len(conversation.history)
            return
        before, previous = conversation.stored, conversation.writing
        conversation.stored = len(conversation.history)
        conversation.writing = asyncio.ensure_future(
            self._write(conversation, pending, before, previous)
        )
        await asyncio.sleep(0)  # the write's first step: queued on the store's worker

    async def _write(
        self,
        conversation: Conversation,
        messages: list[Message],
        before: int,
        previous: asyncio.Future[None] | None,
    ) -> None:
        assert self.store is not None
        try:
            if previous is not None:
                await previous
            await self.store.append(conversation.session_id, conversation.user_id, messages)
        except BaseException:
            conversation.stored = min(conversation.stored, before)
            raise

    async def _stored(self, conversation: Conversation) -> None:
        """Wait until every write started for the conversation is durable (or raise its error).

        A cancelled caller leaves the write running: what it hands over is stored anyway.
        """
        writing = conversation.writing
        if writing is None:
            return
        try:
            with phases.phase("persistence"):  # the wait on the turn's critical path
                await asyncio.shield(writing)
        finally:
            if writing.done() and conversation.writing is writing:
                conversation.writing = None

    # ---- the turn ------------------------------------------------------------------

    async def run_turn(
        self, request: TurnRequest, sink: EventSink, approver: Approver | None = None
    ) -> TurnOutcome:
        """Run one user turn to its end (TurnRunner protocol). Cancel by cancelling the task."""
        try:
            self._refuse_oversized(request)
        except ContextTooSmallError as exc:  # refused before it is stored: the session lives on
            return TurnOutcome(reason="context_too_small", detail=str(exc))
        async with self.turn_locks.hold(request.session_id):
            conversation = await self.conversation(request.session_id, request.user_id)
            content: str | tuple[TextPart | MediaPart, ...] = (
                (TextPart(text=request.prompt), *request.attachments)
                if request.attachments
                else request.prompt
            )
            conversation.history.append(Message(role="user", content=content, label=request.label))
            await self._persist_soon(conversation)  # durable before the answer shows
            if self.store is not None:  # without one, nothing is ever being written
                sink = _AfterStored(sink, self, conversation)
            limits = d.tightened(
                self.limits,
                max_turns=request.max_turns,
                max_cost_usd=request.max_cost_usd,
                max_tokens=request.max_tokens,
            )
            state = d.TurnState(limits=limits)
            calls = TurnCalls(
                self.provider,
                self.ledger,
                state,
                request.session_id,
                self.config.turn_timeout_secs,
            )
            tool_ctx = ToolExecutionContext(
                user_id=request.user_id,
                session_id=request.session_id,
                workspace=self.tools.workspace_for(request.user_id),
                channel=request.channel,
                approval=approver,
                provider=self.provider_id,
                model=self.model,
                budget=calls,
                allowed_tools=request.tools,
                deliver=sink if request.media_types else None,
                media_types=frozenset(request.media_types),
            )
            with span(
                "turn",
                remote_parent=request.traceparent,
                session=request.session_id,
                turn=request.turn_id,
                user=request.user_id,
                agent=request.agent_name,
                provider=self.provider_id,
                model=self.model,
                channel=request.channel,
            ) as observed:
                outcome = await self._guarded(
                    conversation, tool_ctx, sink, calls, request.deadline_secs
                )
                observed["outcome"] = outcome.reason
                return outcome

    def _refuse_oversized(self, request: TurnRequest) -> None:
        """A prompt too large for the context by its bytes alone never enters the history."""
        max_context, room = self._room()
        size = len(request.prompt.encode("utf-8", "surrogatepass"))
        refuse_by_bytes(size, room, max_context, "the message")

    def _room(self) -> tuple[int, int]:
        """The model's context window and the tokens left of it for input."""
        caps = self.provider.capabilities()
        budget = self.config.context_budget
        max_context = caps.max_context_tokens or budget.fallback_max_context_tokens
        max_output = self.config.max_output_tokens or caps.max_output_tokens
        reserved = min(max_output or 0, max_context // 4)
        return max_context, max_context - budget.safety_buffer_tokens - reserved

    async def _guarded(
        self,
        conversation: Conversation,
        tool_ctx: ToolExecutionContext,
        sink: EventSink,
        calls: TurnCalls,
        own_deadline: float | None = None,
    ) -> TurnOutcome:
        state = calls.state
        limits = [x for x in (self.config.turn_deadline_secs, own_deadline) if x is not None]
        deadline = min(limits) if limits else None
        try:
            async with asyncio.timeout(deadline):
                return await self._loop(conversation, tool_ctx, sink, calls)
        except TimeoutError:
            return await self._end(
                conversation, state, "deadline", f"the turn passed its {deadline}s deadline"
            )
        except ContextTooSmallError as exc:
            return await self._end(conversation, state, "context_too_small", str(exc))
        except ProviderError as exc:
            return await self._end(conversation, state, "provider_error", str(exc))
        except asyncio.CancelledError:
            await asyncio.shield(self._close_calls(conversation, "the user cancelled the turn"))
            raise

    async def _loop(
        self,
        conversation: Conversation,
        tool_ctx: ToolExecutionContext,
        sink: EventSink,
        calls: TurnCalls,
    ) -> TurnOutcome:
        state = calls.state
        while True:
            stop = d.before_call(state, state.limits)
            if stop is not None:
                return await self._end(conversation, state, stop.reason, stop.detail)
            state.calling()
            await sink(self._progress(ProviderCall(), "Calling provider", state))
            with phases.phase("prompt"):
                context, prompt_tokens = await self._context(
                    conversation, sink, calls, tool_ctx.allowed_tools, bool(tool_ctx.media_types)
                )
            taint = context_label(context.messages)
            if taint is not None:
                _log.info(
                    "step %d of session %s is tainted by %s",
                    state.model_calls,
                    conversation.session_id,
                    taint.describe(),
                )
            with phases.phase("connect"):  # then first_byte, stream (TurnCalls, HttpEndpoint)
                response = await calls.stream(context, prompt_tokens, sink, self.tools.prepare)
            if isinstance(response, d.Stop):
                return await self._end(conversation, state, response.reason, response.detail)
            response = _labelled(response, taint)
            decision = d.after_response(state, response, state.limits)
            match decision:
                case d.Finish():
                    conversation.history.append(response.message)
                    await self._persist(conversation)
                    return TurnOutcome(reason="completed", response=response, spend=state.spend)
                case d.Nudge(feedback=feedback):
                    state.nudged()
                    conversation.history.append(Message(role="user", content=feedback))
                case d.Stop(reason=reason, detail=detail):
                    conversation.history.append(response.message)
                    return await self._end(conversation, state, reason, detail)
                case d.RunTools(calls=tool_calls):
                    # the start is stored before any call runs (see `repair`)
                    started = msgspec.structs.replace(response.message, tools_started_at=_now())
                    conversation.history.append(started)
                    await self._persist(conversation)
                    step_ctx = replace(tool_ctx, taint=taint)
                    stop = await self._tools(conversation, tool_calls, step_ctx, sink, state)
                    if stop is not None:
                        return await self._end(conversation, state, stop.reason, stop.detail)

    def _progress(self, kind: ProgressKind, text: str, state: d.TurnState) -> Progress:
        turn, most = state.model_calls, state.limits.max_turns
        return Progress(kind=kind, message=f"[{turn}/{most}] {text}", turn=turn, max_turns=most)

    async def _tools(
        self,
        conversation: Conversation,
        calls: tuple[ToolCall, ...],
        tool_ctx: ToolExecutionContext,
        sink: EventSink,
        state: d.TurnState,
    ) -> d.Stop | None:
        names = [c.name for c in calls]
        await sink(
            self._progress(
                ToolExecution(tool_names=names), f"Executing tools: {', '.join(names)}", state
            )
        )

        async def beat(elapsed: int) -> None:
            await sink(
                self._progress(
                    ToolHeartbeat(tool_names=names, elapsed_secs=elapsed),
                    f"Still executing: {', '.join(names)} ({elapsed}s)",
                    state,
                )
            )

        with phases.phase("tools"):
            results = await with_heartbeat(run_calls(calls, self.tools, tool_ctx), beat)
        state.ran_tools(calls, all(outcome.feedback for _, outcome in results))
        conversation.history += result_messages(results)
        await self._persist_soon(conversation)  # written during the next call
        return d.after_tools(state, state.limits)

    async def _context(
        self,
        conversation: Conversation,
        sink: EventSink,
        calls: TurnCalls,
        allowed: frozenset[str] | None = None,
        shows_files: bool = True,
    ) -> tuple[Context, int]:
        """The call's context and an upper bound of its prompt tokens.

        `shows_files` false (the terminal, `ask`, a scheduled run): `send_media` is not
        offered, as it could only fail there (and its schema is 0.6 KB of every request).
        `skill_read`, `skill_create` and `skill_update` are offered once the session has
        called `skill_load` (`NEEDS_A_LOADED_SKILL`).
        """
        state = calls.state
        caps = self.provider.capabilities()
        budget = self.config.context_budget
        max_context = caps.max_context_tokens or budget.fallback_max_context_tokens
        max_output = self.config.max_output_tokens or caps.max_output_tokens
        reserved = min(max_output or 0, max_context // 4)
        room = max_context - budget.safety_buffer_tokens - reserved
        tools = self.tools.schemas() if caps.tools else []
        if allowed is not None:  # the person may use only these (ToolExecutionContext)
            tools = [t for t in tools if t.name in allowed]
        if not shows_files:
            tools = [t for t in tools if t.name not in NEEDS_A_CHAT]
        if not conversation.called("skill_load"):
            tools = [t for t in tools if t.name not in NEEDS_A_LOADED_SKILL]
        # Untrusted text is wrapped before the window is planned, so its markers are counted.
        fixed = for_model(await self._fixed_messages(conversation, state), self._taint_key)
        history = for_model(conversation.live_history(), self._taint_key)
        messages: tuple[Message, ...] = (*fixed, *history)
        # Fast path: a token is never shorter than a byte, so a context whose JSON fits the
        # room in bytes fits in tokens; the tokenizer is not even loaded.
        prompt_tokens = _json_bytes(messages, tools)
        if prompt_tokens > room * budget.trigger_ratio:
            units = history_units(history)
            if units:
                newest = len(_json.encode(units[-1]))
                refuse_by_bytes(newest, room, max_context, "the latest message")
            counter = await self._token_counter()
            # Counting megabytes takes seconds: off the loop, so other sessions go on.
            plan = await asyncio.to_thread(
                self._plan, counter, fixed, list(history), tools, max_context, reserved
            )
            if plan.fill_ratio > budget.trigger_ratio and await self._summarise(
                conversation, counter, plan.budget_tokens - plan.fixed_tokens, sink, calls
            ):
                fixed = for_model(await self._fixed_messages(conversation, state), self._taint_key)
                history = for_model(conversation.live_history(), self._taint_key)
                plan = await asyncio.to_thread(
                    self._plan, counter, fixed, history, tools, max_context, reserved
                )
            messages = plan.messages
            prompt_tokens = plan.fixed_tokens + plan.history_tokens
        elif state.limits.max_tokens is not None or state.limits.max_cost_usd is not None:
            # A capped turn sizes each call's output from the prompt: count it exactly.
            counter = await self._token_counter()
            prompt_tokens = sum(message_tokens(counter, m) for m in messages)
            prompt_tokens += tools_tokens(counter, tools)
        context = Context(
            provider=ProviderId(self.provider_id),
            model=ModelId(self.model),
            messages=messages,
            tools=tuple(tools),
            max_output_tokens=max_output,
            session_id=conversation.session_id,
        )
        return context, prompt_tokens

    def _plan(
        self,
        counter: TokenCounter,
        fixed: list[Message],
        history: list[Message],
        tools: list[FunctionDecl],
        max_context: int,
        reserved: int,
    ) -> WindowPlan:
        return plan_window(
            counter=counter,
            fixed=fixed,
            history=history,
            tools=tools,
            max_context_tokens=max_context,
            safety_buffer_tokens=self.config.context_budget.safety_buffer_tokens,
            reserved_output_tokens=reserved,
        )

    async def taint_of(self, session_id: str, user_id: str) -> Label | None:
        """The taint the session's next step starts with (history and summary; `/status`).

        Restores the session from the store when needed, so the answer holds after a restart.
        """
        conversation = await self.conversation(session_id, user_id)
        summary = conversation.summary.label if conversation.summary else None
        return merge(summary, context_label(conversation.live_history()))

    async def _fixed_messages(
        self, conversation: Conversation, state: d.TurnState
    ) -> list[Message]:
        prompt = conversation.system_prompt or self.system_prompt
        fixed = [Message(role="system", content=prompt)]
        if conversation.summary is not None:
            fixed.append(
                Message(
                    role="system",
                    content=(
                        f"Summary of the first {conversation.summary.covered} messages of this "
                        "session (their full text stays in memory):\n" + conversation.summary.text
                    ),
                    label=conversation.summary.label,
                )
            )
        if state.retrieved is None:
            state.remember_retrieval(await self._retrieve(conversation))
        fixed += state.retrieved or ()
        return fixed

    async def _retrieve(self, conversation: Conversation) -> tuple[Message, ...]:
        """Memory for the turn's question (the latest user text), looked up once per turn."""
        if self.retriever is None:
            return ()
        query = next(
            (m.text for m in reversed(conversation.history) if m.role == "user" and m.text.strip()),
            "",
        )
        if not query:
            return ()
        with span("memory.retrieve", store="memory") as observed:
            found = await self.retriever(conversation.user_id, conversation.session_id, query)
            observed["found"] = found is not None
        return () if found is None else (found,)

    async def _summarise(
        self,
        conversation: Conversation,
        counter: TokenCounter,
        room: int,
        sink: EventSink,
        calls: TurnCalls,
    ) -> bool:
        live = conversation.live_history()
        if len(live) < self.config.summarization.min_turns:
            return False
        target = int(room * self.config.summarization.target_ratio)
        cut = await asyncio.to_thread(choose_cut, live, counter, target)
        if cut <= 0:
            return False
        await sink(self._progress(RollingSummary(), "Summarising older history", calls.state))
        previous = conversation.summary.text if conversation.summary else None
        with span("summarise", model=self.model, messages=cut) as observed:
            text, by_model = await write_summary(
                calls,
                provider_id=self.provider_id,
                model=self.model,
                messages=live[:cut],
                previous=previous,
                max_output_tokens=(
                    self.config.max_output_tokens or self.provider.capabilities().max_output_tokens
                ),
            )
            observed["by_model"] = by_model
        covered = (conversation.summary.covered if conversation.summary else 0) + cut
        epoch = (conversation.summary.epoch if conversation.summary else 0) + 1
        label = merge(
            conversation.summary.label if conversation.summary else None,
            context_label(live[:cut]),
        )
        conversation.summary = Summary(text=text, covered=covered, epoch=epoch, label=label)
        if self.store is not None:
            await self._stored(conversation)  # the summary's range is read from the store
            await self.store.save_summary(conversation.session_id, conversation.summary)
        return True

    async def _token_counter(self) -> TokenCounter:
        if self._counter is None:
            self._counter = await asyncio.to_thread(load_counter, encoding_for_model(self.model))
        return self._counter

    async def _close_calls(self, conversation: Conversation, reason: str) -> None:
        conversation.history += closing_results(dangling_calls(conversation.history), reason)
        await self._persist(conversation)

    async def _end(
        self, conversation: Conversation, state: d.TurnState, reason: d.EndReason, detail: str
    ) -> TurnOutcome:
        await self._close_calls(conversation, f"the turn stopped ({detail})")
        return TurnOutcome(reason=reason, detail=detail, spend=state.spend)


class _AfterStored:
    """The turn's sink, holding back every item but progress until the turn's writes are
    durable: a client never sees an answer to a prompt a crash could still lose."""

    def __init__(self, sink: EventSink, runtime: AgentRuntime, conversation: Conversation) -> None:
        self.sink, self.runtime, self.conversation = sink, runtime, conversation

    async def __call__(self, item: StreamItem) -> None:
        if self.conversation.writing is not None and not isinstance(item, Progress):
            await self.runtime._stored(self.conversation)
        await self.sink(item)


def _labelled(response: Response, taint: Label | None) -> Response:
    """The answer of a tainted step carries the step's label: it may echo untrusted text."""
    if taint is None:
        return response
    message = msgspec.structs.replace(response.message, label=taint)
    return msgspec.structs.replace(response, message=message)


def _json_bytes(messages: tuple[Message, ...], tools: list[FunctionDecl]) -> int:
    """Bytes of the context as JSON: an upper bound of its tokens."""
    return len(_json.encode(messages)) + len(_json.encode(tools))


def _now() -> str:
    """UTC now, ISO 8601 to the second, as `Message.tools_started_at` stores it."""
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
