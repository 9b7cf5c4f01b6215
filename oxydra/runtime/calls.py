"""The one path by which a turn calls a model, so what a turn may spend is what it spends.

Every provider call a turn causes goes through `TurnCalls`: the answer (streamed), a rolling
summary (whole), and a delegated sub-agent's calls — the sub-agent runs its own turn with
this turn's *remaining* budget as its limits and hands its spend back (`TurnCalls.absorb`).
Memory retrieval embeds locally and calls no provider.

Rules:
1. A call does not start when the turn's tokens or money are spent.
2. Its output is capped to what is left: the tokens remaining after the prompt, and the
   completion tokens the remaining money buys after paying for the prompt (at the model's
   catalog prices). A call that could not produce `MIN_OUTPUT_TOKENS` does not start.
3. The prompt's size is an upper bound (its JSON bytes, or the tokenizer's count when the
   window was planned with it), so the cap errs on the side of stopping early.
4. Every call's reported usage is charged to the turn (`TurnState.charge`) and to the
   session's ledger, the summary's included; each call is a `chat` span carrying its
   usage, price, finish reason and time to first chunk (docs/observability.md).
5. Retries and the stream-to-complete fallback belong to the provider (`ReliableProvider`);
   here a stream that breaks is a `ProviderError`, and a stream that stops sending for
   `timeout_secs` a `ProviderTimeoutError`.
6. A whole answer and the first item of a stream are bounded per attempt by the route
   (`ReliableProvider(attempt_timeout=...)`), which retries a slow server; bounding them
   here too would cut the retries off. A `TimeoutError` that still escapes is a provider
   failure, never the turn's deadline.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import msgspec

from oxydra import _phases as phases
from oxydra.core.errors import ProviderError, ProviderTimeoutError
from oxydra.core.log import span
from oxydra.core.messages import Context, Response, UsageUpdate
from oxydra.core.spend import Spend
from oxydra.core.stream import ConnectionLost, StreamItem, Text, ToolCallDelta
from oxydra.providers import Provider
from oxydra.runtime.api import EventSink
from oxydra.runtime.decide import Stop, TurnState
from oxydra.runtime.ledger import CostLedger
from oxydra.wire.assemble import ResponseAssembler

MIN_OUTPUT_TOKENS = 16


class TurnCalls:
    """The calls of one turn on one provider, charged to one turn state and session.

    Args:
        provider: the route (a `ReliableProvider` in the product).
        ledger: prices calls of this model and keeps the session totals.
        state: the turn's state, which is charged.
        session_id: the session the ledger charges.
        timeout_secs: the longest wait for the next stream item once one arrived (the
            route bounds each attempt at a whole answer or a stream's start).
    """

    def __init__(
        self,
        provider: Provider,
        ledger: CostLedger,
        state: TurnState,
        session_id: str,
        timeout_secs: float,
    ) -> None:
        self.provider = provider
        self.ledger = ledger
        self.state = state
        self.session_id = session_id
        self.timeout_secs = timeout_secs

    def admit(self, context: Context, prompt_tokens: int) -> Context | Stop:
        """`context` with its output capped to what the budget affords, or why it may not run."""
        room = self._output_room(prompt_tokens)
        if room is None:
            return context
        if room < MIN_OUTPUT_TOKENS:
            return self._spent()
        wanted = context.max_output_tokens
        if wanted is not None and wanted <= room:
            return context
        return msgspec.structs.replace(context, max_output_tokens=room)

    def _output_room(self, prompt_tokens: int) -> int | None:
        rooms: list[int] = []
        tokens = self.state.remaining_tokens()
        if tokens is not None:
            rooms.append(tokens - prompt_tokens)
        money = self.state.remaining_cost_usd()
        prices = self.ledger.unit_prices()
        if money is not None and prices is not None and prices[1] > 0:
            per_prompt, per_completion = prices
            rooms.append(math.floor((money - prompt_tokens * per_prompt) / per_completion))
        return min(rooms) if rooms else None

    def _spent(self) -> Stop:
        tokens, money = self.state.remaining_tokens(), self.state.remaining_cost_usd()
        if money is not None and self.ledger.unit_prices() is not None:
            return Stop("max_cost", f"${money:.4f} left of the turn's budget cannot pay for a call")
        return Stop(
            "max_tokens", f"{tokens} tokens left of the turn's budget are too few for a call"
        )

    def charge(self, usage: UsageUpdate | None) -> float | None:
        """Charge one call's usage to the turn and the session (rule 4); returns its USD."""
        cost = self.ledger.charge(self.session_id, usage)
        self.state.charge(usage, cost)
        return cost

    def remaining_tokens(self) -> int | None:
        """See `TurnBudget`: what a sub-agent may use of this turn's tokens."""
        return self.state.remaining_tokens()

    def remaining_cost_usd(self) -> float | None:
        """See `TurnBudget`: what a sub-agent may spend of this turn's money."""
        return self.state.remaining_cost_usd()

    def absorb(self, spend: Spend) -> None:
        """Charge a sub-agent's whole spend to the turn and the session."""
        self.state.absorb(spend)
        self.ledger.absorb(self.session_id, spend)

    async def complete(self, context: Context, prompt_tokens: int) -> Response | Stop:
        """A whole answer (a summary, or a model that cannot stream), charged."""
        admitted = self.admit(context, prompt_tokens)
        if isinstance(admitted, Stop):
            return admitted
        with self._span(admitted) as observed:
            observed["stream"], observed["_input"] = False, admitted.messages
            try:
                response = await self.provider.complete(admitted)
            except TimeoutError as exc:  # rule 6
                message = f"no answer from the provider in time: {exc}"
                raise ProviderTimeoutError(message) from exc
            _observe(observed, response, self.charge(response.usage))
        return response

    async def stream(
        self,
        context: Context,
        prompt_tokens: int,
        sink: EventSink,
        on_tool_call: Callable[[str], None],
    ) -> Response | Stop:
        """The answer, streamed to `sink` as it comes, charged once it is whole.

        `on_tool_call(name)` runs when the model starts a call (to warm what it needs).
        """
        if not self.provider.capabilities().streaming:
            return await self.complete(context, prompt_tokens)
        admitted = self.admit(context, prompt_tokens)
        if isinstance(admitted, Stop):
            return admitted
        with self._span(admitted) as observed:
            observed["stream"], observed["_input"] = True, admitted.messages
            response = await self._stream(admitted, sink, on_tool_call, observed)
            _observe(observed, response, self.charge(response.usage))
        return response

    def _span(self, context: Context) -> AbstractContextManager[dict[str, object]]:
        """The call's `chat` span: the provider as the catalog names it, the route's name."""
        return span(
            "chat",
            provider=self.provider.catalog_provider_id(),
            route=context.provider,
            model=context.model,
        )

    async def _stream(
        self,
        admitted: Context,
        sink: EventSink,
        on_tool_call: Callable[[str], None],
        observed: dict[str, object],
    ) -> Response:
        assembler = ResponseAssembler()
        began = time.perf_counter()
        stream = self.provider.stream(admitted)
        watch: _IdleWatch | None = None
        try:
            async with asyncio.timeout(None) as deadline:
                item: StreamItem | None = await anext(stream, None)  # bounded by the route
                if item is None:
                    return assembler.response()
                observed["ttft_s"] = round(time.perf_counter() - began, 6)
                watch = _IdleWatch(deadline, self.timeout_secs)  # rule 6
                clock, feed = watch.clock, assembler.feed
                phases.switch("stream")
                while item is not None:
                    if type(item) is not Text:  # a piece of text, the usual item, needs no look
                        if isinstance(item, ConnectionLost):
                            raise ProviderError(f"the stream broke: {item.message}")
                        if isinstance(item, ToolCallDelta) and item.name:
                            on_tool_call(item.name)
                    feed(item)
                    await sink(item)
                    watch.since, watch.waiting = clock(), True
                    item = await anext(stream, None)
                    watch.waiting = False
        except TimeoutError as exc:
            message = f"no data from the provider for {self.timeout_secs}s"
            raise ProviderTimeoutError(message) from exc
        finally:
            if watch is not None:
                watch.close()
            await stream.aclose()
        return assembler.response()


class _IdleWatch:
    """Expires `deadline` once the stream has been awaited for `gap` seconds with nothing.

    An `asyncio.timeout` per item would schedule and cancel a timer for every streamed token;
    this one timer re-arms only when it fires, and time spent in the sink does not count.
    The consumer sets `since` (from `clock`) and `waiting` around each wait for an item.
    """

    __slots__ = ("_deadline", "_gap", "_loop", "_timer", "clock", "since", "waiting")

    def __init__(self, deadline: asyncio.Timeout, gap: float) -> None:
        self._deadline = deadline
        self._gap = gap
        self._loop = asyncio.get_running_loop()
        # asyncio's own loop keeps `time.monotonic`; calling it directly saves a method call
        # per item (another loop's clock may differ: then its own)
        loop_time = type(self._loop).time
        plain = loop_time is asyncio.BaseEventLoop.time
        self.clock = time.monotonic if plain else self._loop.time
        self.since = self.clock()
        self.waiting = False
        self._timer = self._loop.call_at(self.since + gap, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        if self.waiting and now >= self.since + self._gap:
            self._deadline.reschedule(now)  # the awaiting task is cancelled: TimeoutError
            return
        due = self.since + self._gap if self.waiting else now + self._gap
        self._timer = self._loop.call_at(due, self._check)

    def close(self) -> None:
        """Stop the timer (the stream ended or failed)."""
        self._timer.cancel()


def _observe(observed: dict[str, object], response: Response, cost: float | None) -> None:
    """Result attributes of a `chat` span; `_`-prefixed ones are content (opt-in, scrubbed)."""
    usage = response.usage
    if usage is not None:
        observed["input_tokens"] = usage.prompt_tokens
        observed["output_tokens"] = usage.completion_tokens
        observed["cache_read_tokens"] = usage.cache_read_tokens
        observed["reasoning_tokens"] = usage.reasoning_tokens
    observed["cost_usd"] = cost
    observed["response_id"] = response.response_id
    if response.finish_reason is not None:
        observed["finish_reasons"] = (str(response.finish_reason),)
    observed["_output"] = response.message
