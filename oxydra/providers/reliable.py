"""`ReliableProvider`: retries with backoff, then a chain of fallback routes.

Rules:

1. A call is retried only for retryable errors (`ProviderError.retryable`: transport failures,
   timeouts, 429, 5xx), at most `max_attempts` times per route.
2. The delay before retry n (1-based) is `min(base * 2**(n-1), max)`. With `jitter` on, it is
   "equal jitter": half the delay plus a uniform random share of the other half, so concurrent
   clients spread out while never retrying sooner than half the backoff.
3. A `Retry-After` the provider sent is honoured as a minimum delay. When it asks for longer
   than `max_retry_after` seconds, waiting is pointless: the route is given up at once.
4. A stream is retried only until its first item reached the consumer. A stream whose first
   item is `ConnectionLost` counts as a transport failure (nothing was delivered), and the
   route's next attempt asks for a whole answer (`complete`), whose items are then streamed:
   this is the one place a broken stream falls back, so attempts never multiply. Later
   failures go to the consumer as they are.
5. When a route is given up with a retryable error, an authentication error or a protocol
   error (the route's fault, not the request's), the next fallback route is tried with the
   same context, its provider and model swapped in. Other errors (bad request, context too
   long) are raised at once: another route would refuse them too.
6. With `attempt_timeout` set (`[runtime] turn_timeout_secs`), each attempt must answer, or
   start its stream, within that many seconds; one that does not fails with a retryable
   `ProviderTimeoutError`, so a slow server is asked again rather than ending the turn.

Every retry and every route given up is logged with the route's provider and model.
`sleep` and `rng` are injectable so tests run without waiting and with fixed jitter.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from oxydra.catalog import ProviderCaps
from oxydra.config.schema import ReliabilityConfig
from oxydra.core.errors import (
    AuthenticationError,
    ProviderError,
    ProviderHTTPError,
    ProviderProtocolError,
    ProviderTimeoutError,
    ProviderTransportError,
)
from oxydra.core.ids import ModelId, ProviderId
from oxydra.core.log import get_logger, span_event
from oxydra.core.messages import Context, Response
from oxydra.core.stream import ConnectionLost, StreamItem
from oxydra.providers._base import Provider
from oxydra.wire.assemble import response_items

_log = get_logger(__name__)
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class Route:
    """A provider to call, with the registry name and model to put in the context."""

    provider: Provider
    name: str | None = None
    model: str | None = None

    def context_for(self, context: Context) -> Context:
        """`context` addressed to this route."""
        changes: dict[str, str] = {}
        if self.name:
            changes["provider"] = ProviderId(self.name)
        if self.model:
            changes["model"] = ModelId(self.model)
        return msgspec.structs.replace(context, **changes) if changes else context

    def label(self, context: Context) -> tuple[str, str]:
        """The provider entry and model this route calls, for logs."""
        name = self.name or getattr(self.provider, "name", None) or str(context.provider)
        return name, self.model or str(context.model)


def backoff_delay(
    attempt: int, config: ReliabilityConfig, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry `attempt` (1-based), per rule 2."""
    delay = min(config.backoff_base_ms * 2 ** (attempt - 1), config.backoff_max_ms) / 1000
    if config.jitter:
        half = delay / 2
        delay = half + (rng or random).uniform(0, half)
    return float(delay)


def _moves_on(error: ProviderError) -> bool:
    return error.retryable or isinstance(error, AuthenticationError | ProviderProtocolError)


class ReliableProvider:
    """Retries and fallbacks around a primary route (see the module's rules).

    Args:
        primary: the configured provider.
        config: `[reliability]` settings.
        fallbacks: routes tried in order after the primary is given up.
        sleep: awaited for every backoff delay.
        rng: randomness for jitter.
        max_retry_after: the longest `Retry-After` (seconds) worth waiting for.
        attempt_timeout: seconds each attempt may take to answer or to start its stream.
    """

    def __init__(
        self,
        primary: Provider,
        config: ReliabilityConfig | None = None,
        *,
        fallbacks: Sequence[Route] = (),
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        max_retry_after: float = 60.0,
        attempt_timeout: float | None = None,
    ) -> None:
        self.routes = [Route(primary), *fallbacks]
        self.config = config or ReliabilityConfig()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.max_retry_after = max_retry_after
        self.attempt_timeout = attempt_timeout

    def capabilities(self) -> ProviderCaps:
        """The primary route's capabilities."""
        return self.routes[0].provider.capabilities()

    def catalog_provider_id(self) -> str:
        """The primary route's catalog namespace."""
        return self.routes[0].provider.catalog_provider_id()

    async def aclose(self) -> None:
        """Close every route's provider that holds resources."""
        for route in self.routes:
            closer = getattr(route.provider, "aclose", None)
            if closer is not None:
                await closer()

    async def _pause(
        self, attempt: int, error: ProviderError, route: Route, context: Context
    ) -> bool:
        """Wait before the next attempt; False when the route should be given up instead."""
        if attempt >= self.config.max_attempts or not error.retryable:
            return False
        delay = backoff_delay(attempt, self.config, self._rng)
        retry_after = error.retry_after if isinstance(error, ProviderHTTPError) else None
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return False
            delay = max(delay, retry_after)
        name, model = route.label(context)
        _log.warning(
            "provider call failed, retrying",
            extra={
                "oxy": {
                    "provider": name,
                    "route": f"{name}/{model}",
                    "attempt": attempt,
                    "delay_s": round(delay, 3),
                    "error": str(error),
                }
            },
        )
        span_event("retry", attempt=attempt, delay_s=round(delay, 3), error=type(error).__name__)
        await self._sleep(delay)
        return True

    def _give_up(self, route: Route, context: Context, error: ProviderError | None) -> None:
        name, model = route.label(context)
        _log.warning(
            "giving up a provider route",
            extra={"oxy": {"provider": name, "route": f"{name}/{model}", "error": str(error)}},
        )

    async def _bounded(self, call: Awaitable[T], route: Route, context: Context) -> T:
        """`call` within `attempt_timeout` (rule 6)."""
        if self.attempt_timeout is None:
            return await call
        try:
            async with asyncio.timeout(self.attempt_timeout):
                return await call
        except TimeoutError as exc:
            name, model = route.label(context)
            raise ProviderTimeoutError(
                f"{name}: no answer from model {model} within {self.attempt_timeout:g}s "
                "([runtime] turn_timeout_secs)",
                provider=name,
            ) from exc

    async def complete(self, context: Context) -> Response:
        """Complete on the first route that answers."""
        last: ProviderError | None = None
        for index, route in enumerate(self.routes):
            if index:
                _fallback_event(route, last)
            routed = route.context_for(context)
            attempt = 1
            while True:
                try:
                    return await self._bounded(route.provider.complete(routed), route, routed)
                except ProviderError as exc:
                    last = exc
                    if await self._pause(attempt, exc, route, routed):
                        attempt += 1
                        continue
                    if not _moves_on(exc):
                        raise
                    break
            self._give_up(route, routed, last)
        assert last is not None
        raise last

    async def stream(self, context: Context) -> AsyncGenerator[StreamItem, None]:
        """Stream from the first route whose stream starts (see rules 4 and 5)."""
        last: ProviderError | None = None
        for index, route in enumerate(self.routes):
            if index:
                _fallback_event(route, last)
            routed = route.context_for(context)
            attempt = 1
            while True:
                whole = isinstance(last, _LostEarly) and last.route is route
                items = _whole(route.provider, routed) if whole else route.provider.stream(routed)
                try:
                    first = await self._bounded(_first_item(items, route), route, routed)
                except ProviderError as exc:
                    await items.aclose()
                    last = exc
                    if await self._pause(attempt, exc, route, routed):
                        attempt += 1
                        continue
                    if not _moves_on(exc):
                        raise
                    break
                try:
                    if first is not None:
                        yield first
                    async for item in items:
                        yield item
                finally:
                    await items.aclose()
                return
            self._give_up(route, routed, last)
        if isinstance(last, _LostEarly):
            yield last.item
            return
        assert last is not None
        raise last


def _fallback_event(route: Route, last: ProviderError | None) -> None:
    span_event(
        "fallback",
        provider=route.name or "",
        model=route.model or "",
        error=type(last).__name__ if last else "",
    )


class _LostEarly(ProviderTransportError):
    """A stream whose first item was `ConnectionLost`: retryable, nothing was delivered."""

    def __init__(self, item: ConnectionLost, route: Route) -> None:
        name = route.name or getattr(route.provider, "name", "")
        super().__init__(item.message, provider=str(name))
        self.item = item
        self.route = route


async def _whole(provider: Provider, context: Context) -> AsyncGenerator[StreamItem, None]:
    """A whole answer as the items its stream would have carried (rule 4)."""
    for item in response_items(await provider.complete(context)):
        yield item


async def _first_item(items: AsyncIterator[StreamItem], route: Route) -> StreamItem | None:
    """The first item; a first `ConnectionLost` is raised as a retryable transport error."""
    first = await anext(items, None)
    if isinstance(first, ConnectionLost):
        raise _LostEarly(first, route)
    return first
