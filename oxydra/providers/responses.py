"""OpenAI Responses driver, with `previous_response_id` chaining per session.

Chaining rules:

1. After a call with `Context.session_id`, the driver remembers the response id, how many
   messages the server now holds, and a fingerprint (SHA-256) of those messages.
2. The next call of that session chains when its context starts with exactly those messages
   followed by the assistant message of that response; then only the messages after it are
   sent. Any other context (history summarised, system prompt changed, another branch) is sent
   whole, which also starts a new chain.
3. A 4xx `BadRequestError` while chaining (expired or unknown response id) drops the chain
   and the call is repeated once with the full context.
4. Chains are kept for the most recent `max_sessions` sessions only.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import AsyncGenerator
from typing import Any, NamedTuple

import msgspec

from oxydra.core.errors import BadRequestError
from oxydra.core.log import get_logger
from oxydra.core.messages import Context, Message, Response
from oxydra.core.stream import FinishReason, StreamItem
from oxydra.providers._base import FormatCodec, WireProvider
from oxydra.wire import WireRequest
from oxydra.wire import responses as wire

DEFAULT_BASE_URL = "https://api.openai.com"
_log = get_logger(__name__)
_encoder = msgspec.json.Encoder()


def codec(profile: wire.ResponsesProfile) -> FormatCodec:
    """Responses for one deployment; `build` takes `previous_response_id` and `start`."""
    return FormatCodec(profile, wire.build_request, wire.parse_response, wire.ResponsesStream)


class Chain(NamedTuple):
    """Where a session's server-side conversation stands."""

    response_id: str
    held: int
    fingerprint: str


def _fingerprint(messages: tuple[Message, ...]) -> str:
    return hashlib.sha256(_encoder.encode(messages)).hexdigest()


class ChainStore:
    """Per-session chains, least recently used dropped first."""

    def __init__(self, max_sessions: int = 1024) -> None:
        self._chains: OrderedDict[str, Chain] = OrderedDict()
        self._max = max_sessions

    def lookup(self, context: Context) -> tuple[str, int] | None:
        """`(previous_response_id, start)` when `context` continues its session's chain."""
        chain = self._chains.get(context.session_id or "")
        if chain is None:
            return None
        messages = context.messages
        if len(messages) <= chain.held or messages[chain.held].role != "assistant":
            return None
        if _fingerprint(messages[: chain.held]) != chain.fingerprint:
            return None
        self._chains.move_to_end(context.session_id or "")
        return chain.response_id, chain.held + 1

    def remember(self, context: Context, response_id: str | None) -> None:
        """Record the server's state after answering `context`."""
        if not context.session_id or not response_id:
            return
        held = len(context.messages)
        self._chains[context.session_id] = Chain(response_id, held, _fingerprint(context.messages))
        self._chains.move_to_end(context.session_id)
        while len(self._chains) > self._max:
            self._chains.popitem(last=False)

    def forget(self, session_id: str | None) -> None:
        """Drop a session's chain."""
        self._chains.pop(session_id or "", None)


class ResponsesProvider(WireProvider):
    """The Responses API driver; see the module docstring for chaining."""

    codec: FormatCodec

    def __init__(self, *, max_sessions: int = 1024, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chains = ChainStore(max_sessions)

    def _request(
        self, context: Context, stream: bool, chain: tuple[str, int] | None
    ) -> WireRequest:
        previous, start = chain if chain else (None, 0)
        return self.codec.build(
            context, stream=stream, caps=self.caps, previous_response_id=previous, start=start
        )

    async def complete(self, context: Context) -> Response:
        """One call, chained when the session allows, repeated unchained once if refused."""
        chain = self.chains.lookup(context)
        try:
            response = await self.complete_request(self._request(context, False, chain))
        except BadRequestError as exc:
            if chain is None:
                raise
            self._broken(context, exc)
            response = await self.complete_request(self._request(context, False, None))
        self.chains.remember(context, response.response_id)
        return response

    def _broken(self, context: Context, exc: BadRequestError) -> None:
        _log.info(
            "response chain refused, sending full context", extra={"oxy": {"error": exc.message}}
        )
        self.chains.forget(context.session_id)

    async def stream(self, context: Context) -> AsyncGenerator[StreamItem, None]:
        """One stream, chained when the session allows, repeated unchained once if refused."""
        chain = self.chains.lookup(context)
        items = self.stream_request(self._request(context, True, chain))
        try:
            first = await anext(items, None)
        except BadRequestError as exc:
            if chain is None:
                raise
            self._broken(context, exc)
            items = self.stream_request(self._request(context, True, None))
            first = await anext(items, None)
        async with contextlib.aclosing(items):
            response_id = None
            item = first
            while item is not None:
                if isinstance(item, FinishReason):
                    response_id = item.response_id
                yield item
                item = await anext(items, None)
        self.chains.remember(context, response_id)
