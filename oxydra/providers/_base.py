"""The provider seam and the one driver shared by the four wire formats.

`Provider` is what the runtime calls. `WireProvider` implements it for any wire format given a
`WireCodec` (four tiny adapters in this package over the pure `oxydra.wire` modules) and an
`HttpEndpoint`: request sending, error mapping and stream pumping are written once here.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import msgspec

from oxydra.catalog import ProviderCaps
from oxydra.core.errors import (
    ConfigError,
    EmptyStreamError,
    ProviderError,
    ProviderProtocolError,
    WireError,
)
from oxydra.core.log import get_logger, span
from oxydra.core.messages import Context, Response
from oxydra.core.stream import StreamItem
from oxydra.providers._http import HttpEndpoint, read_limited, translated
from oxydra.providers._http import Response as HttpResponse
from oxydra.providers._stream import pump_sse
from oxydra.wire import StreamTranslator, WireRequest
from oxydra.wire.assemble import response_items

_log = get_logger(__name__)
WINDOW_PROBE_TIMEOUT = 5.0
# Reads a server's model list (`GET /v1/models`): the context window of a model, or None.
WindowProbe = Callable[[bytes, str], int | None]


@runtime_checkable
class Provider(Protocol):
    """An LLM route the runtime can call.

    `stream` is an async generator: errors that happen before the first item (status,
    connection) are raised from the first `__anext__`; a connection lost later ends the stream
    with a `ConnectionLost` item. Each stream yields at most one `UsageUpdate`, with the
    call's totals.
    """

    async def complete(self, context: Context) -> Response:
        """Ask for a whole answer."""
        ...

    def stream(self, context: Context) -> AsyncGenerator[StreamItem, None]:
        """Ask for an answer as stream items (an async generator: close it when done)."""
        ...

    def capabilities(self) -> ProviderCaps:
        """What this route can do (catalog plus overrides)."""
        ...

    def catalog_provider_id(self) -> str:
        """The catalog namespace of this route's model (`openai`, `anthropic`, `google`...)."""
        ...


class WireCodec(Protocol):
    """The pure half of a provider: requests out, responses and stream items in."""

    def build(self, context: Context, *, stream: bool, caps: ProviderCaps) -> WireRequest:
        """The request for `context`."""
        ...

    def parse(self, body: bytes) -> Response:
        """A non-streaming answer; raises `WireError` on garbage."""
        ...

    def translator(self) -> StreamTranslator:
        """A fresh translator for one stream."""
        ...


@dataclass(frozen=True)
class FormatCodec:
    """A `WireCodec` binding one pure wire module (`oxydra.wire.<format>`) to the driver.

    `output_limit_arg` names the builder keyword that receives the catalog's output limit
    (Anthropic's required `max_tokens`); extra keywords of `build` (Responses chaining) pass
    straight to the builder.
    """

    profile: Any
    build_request: Callable[..., WireRequest]
    parse_response: Callable[[bytes], Response]
    translator_type: Callable[[], StreamTranslator]
    output_limit_arg: str | None = None

    def build(
        self, context: Context, *, stream: bool, caps: ProviderCaps, **extra: Any
    ) -> WireRequest:
        """The request for `context`."""
        if self.output_limit_arg:
            extra[self.output_limit_arg] = caps.max_output_tokens
        return self.build_request(context, self.profile, stream=stream, **extra)

    def parse(self, body: bytes) -> Response:
        """A whole answer."""
        return self.parse_response(body)

    def translator(self) -> StreamTranslator:
        """A fresh translator for one stream."""
        return self.translator_type()


class WireProvider:
    """A provider speaking one wire format over HTTP.

    Args:
        name: registry entry name.
        codec: the wire format.
        endpoint: where and how to send.
        caps: capabilities of the configured model.
        catalog_provider: catalog namespace of the model.
        window_probe: for a model the catalog does not know, read its context window from
            the server's model list before the first call (llama.cpp, vLLM, LM Studio say it).
    """

    def __init__(
        self,
        *,
        name: str,
        codec: WireCodec,
        endpoint: HttpEndpoint,
        caps: ProviderCaps,
        catalog_provider: str,
        window_probe: WindowProbe | None = None,
    ) -> None:
        self.name = name
        self.codec = codec
        self.endpoint = endpoint
        self.caps = caps
        self.catalog_provider = catalog_provider
        self._window_probe = window_probe

    def capabilities(self) -> ProviderCaps:
        """What this route can do."""
        return self.caps

    def catalog_provider_id(self) -> str:
        """The catalog namespace of the route's model."""
        return self.catalog_provider

    async def learn_window(self, model: str) -> None:
        """Once: ask the server for the model's context window (see `window_probe`)."""
        probe, self._window_probe = self._window_probe, None
        if probe is None:
            return
        try:
            body = await self.endpoint.get("/v1/models", timeout=WINDOW_PROBE_TIMEOUT)
        except (ProviderError, ConfigError) as exc:
            _log.info(
                "the server did not list its models",
                extra={"oxy": {"provider": self.name, "error": str(exc)}},
            )
            return
        window = probe(body, model)
        if window is None:
            return
        _log.info(
            "context window from the server",
            extra={"oxy": {"provider": self.name, "model": model, "tokens": window}},
        )
        self.caps = msgspec.structs.replace(
            self.caps, max_context_tokens=window, max_input_tokens=window
        )

    async def complete(self, context: Context) -> Response:
        """Send one non-streaming request and parse the answer."""
        await self.learn_window(context.model)
        request = self.codec.build(context, stream=False, caps=self.caps)
        with span("provider.complete", provider=self.name, model=context.model):
            return await self.complete_request(request)

    async def complete_request(self, request: WireRequest) -> Response:
        """Send a built non-streaming request and parse the answer."""
        return self._parse(await self.endpoint.post(request))

    def _parse(self, body: bytes) -> Response:
        try:
            return self.codec.parse(body)
        except WireError as exc:
            raise ProviderProtocolError(f"{self.name}: {exc}", provider=self.name) from exc

    async def stream(self, context: Context) -> AsyncGenerator[StreamItem, None]:
        """Send one streaming request and yield its items as they arrive.

        A stream answered with an empty 200 (llama.cpp's server when it cannot stream tool
        calls) is asked again without streaming, and the answer yielded as items.
        """
        await self.learn_window(context.model)
        request = self.codec.build(context, stream=True, caps=self.caps)
        _log.debug(
            "provider.stream", extra={"oxy": {"provider": self.name, "model": context.model}}
        )
        try:
            async for item in self.stream_request(request):
                yield item
        except EmptyStreamError:
            _log.info(
                "empty stream, asking without streaming", extra={"oxy": {"provider": self.name}}
            )
            for item in response_items(await self.complete(context)):
                yield item

    async def stream_request(self, request: WireRequest) -> AsyncGenerator[StreamItem, None]:
        """Send a built streaming request and yield its items."""
        async with self.endpoint.open_stream(request) as response:
            if "application/json" in response.headers.get("content-type", ""):
                for item in await self._whole_json(response):
                    yield item
                return
            translator = self.codec.translator()
            async for item in pump_sse(response, translator, provider=self.name):
                yield item

    async def _whole_json(self, response: HttpResponse) -> list[StreamItem]:
        """A server that ignored `stream: true` answered with one JSON document."""
        _log.info("stream answered with JSON", extra={"oxy": {"provider": self.name}})
        with translated(self.name):
            body = await read_limited(response, 32 * 1024 * 1024)
        if not body.strip():
            raise ProviderProtocolError(f"{self.name}: empty body", provider=self.name)
        return response_items(self._parse(body))

    async def aclose(self) -> None:
        """Close the HTTP client if this provider owns it."""
        await self.endpoint.aclose()
