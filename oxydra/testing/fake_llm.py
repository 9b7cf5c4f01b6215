"""A scriptable fake LLM server on loopback, speaking the four wire formats Oxydra drives.

Endpoints (matched by path suffix, so any base path prefix works):

- `POST .../v1/chat/completions`   OpenAI Chat Completions (stream by `"stream": true`)
- `POST .../v1/messages`           Anthropic Messages
- `POST .../v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`  Gemini
- `POST .../v1/responses`          OpenAI Responses
- `GET  <path>`                    static bodies added with `add_route` (e.g. a catalog file)

Each request consumes the next step of its conversation. A request is routed to a
conversation by its `x-fake-conversation` header, else by its model name when a conversation
has that name, else to `default`. Steps (`oxydra.testing.fake_llm.Reply`, `Fail`, `Html`,
`Empty`, `Raw`) render as the provider would answer: text replies, tool calls with arguments
split over many chunks, reasoning, error statuses with `Retry-After` and provider-shaped error
bodies, a connection cut mid-stream (`Reply(cut_after=N)`), slow tokens (`Reply(delay=s)`),
an HTML error page, an empty 200 body, or raw bytes. A request with no step left is listed
in `errors` (`assert_done()` fails on leftovers and on such requests) and gets a 500, or,
with `strict=False` (the command line's default), a friendly reply saying the script ended.
`server="llamacpp"` or `"vllm"` imitates what those servers did (`_fake_quirks`).

Use from tests::

    async with FakeLLM([Reply(text="hello")]) as llm:
        entry = ProviderEntry(provider_type="openai", base_url=llm.base_url, api_key="k")
        ...
        assert llm.requests[0].json()["model"] == "gpt-4o-mini"
        llm.assert_done()

Attributes of a running server: `base_url`, `port`, `requests` (every `HttpRequest` received,
in order), `first_byte_times` (`time.perf_counter()` of the first body byte of each response,
for latency benchmarks), `errors`.

From a shell (for subprocess tests), printing `FAKE_LLM_URL=http://127.0.0.1:<port>` once
listening, and optionally appending each request as a JSON line to `--record`::

    python -m oxydra.testing.fake_llm --port 0 --script script.json [--record requests.jsonl]
        [--server llamacpp] [--strict]

where `script.json` is a list of steps (`[{"kind": "reply", "text": "hi"}]`) or
`{"conversations": {"name": [steps...]}}`. docs/fake-llm.md has a walk-through.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec

from oxydra.testing._fake_formats import FORMATS, format_for
from oxydra.testing._fake_http import HttpRequest, HttpResponseWriter, serve_connection
from oxydra.testing._fake_quirks import ServerKind, ServerQuirks
from oxydra.testing._fake_script import (
    Call,
    Empty,
    Fail,
    Html,
    Raw,
    Reply,
    Script,
    Step,
    Usage,
    decode_script,
)

__all__ = [
    "Call",
    "Empty",
    "Fail",
    "FakeLLM",
    "Html",
    "HttpRequest",
    "Raw",
    "Reply",
    "Script",
    "Step",
    "Usage",
    "decode_script",
]

_JSON = {"content-type": "application/json"}
SCRIPT_ENDED = (
    "(This is the fake model: its script has no more replies. "
    "Nothing you type here reaches a real LLM.)"
)


class FakeLLM:
    """The fake server. Use as `async with FakeLLM(steps) as llm:` or `start()` / `close()`.

    Args:
        steps: the `default` conversation's steps.
        conversations: more conversations by name.
        host: address to bind (loopback).
        port: port to bind; 0 picks a free one.
        server: which server's behaviour to imitate (`oxydra.testing._fake_quirks`).
        context_window: the window that server reports and enforces.
        strict: answer a request with no step left with a 500 (and list it in `errors`);
            when False it gets `SCRIPT_ENDED` as a friendly reply (still listed).
        served_model: the model name a vLLM-like server lists.
    """

    def __init__(
        self,
        steps: list[Step] | None = None,
        *,
        conversations: dict[str, list[Step]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        server: ServerKind = "openai",
        context_window: int = 4096,
        strict: bool = True,
        served_model: str = "served-model",
    ) -> None:
        self.quirks = ServerQuirks(kind=server, context_window=context_window)
        self.strict = strict
        self.served_model = served_model
        self._steps: dict[str, collections.deque[Step]] = collections.defaultdict(collections.deque)
        self.add(steps or [])
        for name, conv in (conversations or {}).items():
            self.add(conv, conversation=name)
        self._routes: dict[str, tuple[bytes, str]] = {}
        self._host, self._port = host, port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.requests: list[HttpRequest] = []
        self.gets: list[HttpRequest] = []
        self.first_byte_times: list[float] = []
        self.errors: list[str] = []
        self.on_request: list[Any] = []
        self._holds: dict[str, collections.deque[asyncio.Event]] = collections.defaultdict(
            collections.deque
        )

    # ---- scripting ------------------------------------------------------------------------

    def add(self, steps: list[Step], *, conversation: str = "default") -> None:
        """Append steps to a conversation."""
        self._steps[conversation].extend(steps)

    def hold(self, conversation: str = "default") -> asyncio.Event:
        """Hold the next reply of `conversation` after its first stream event (without
        streaming: before the answer) until the returned event is set.

        A model still answering for exactly as long as a test needs, e.g. until another
        process shows it waits for the turn this reply belongs to.
        """
        release = asyncio.Event()
        self._holds[conversation].append(release)
        return release

    def add_route(self, path: str, body: bytes, content_type: str = "application/json") -> None:
        """Serve `body` to `GET path` (any number of times)."""
        self._routes[path] = (body, content_type)

    def unused_steps(self) -> dict[str, int]:
        """Conversations with steps left, and how many."""
        return {name: len(steps) for name, steps in self._steps.items() if steps}

    def assert_done(self) -> None:
        """Fail unless every step was used and no request went unanswered."""
        problems = [*self.errors]
        problems += [
            f"{n} unused step(s) in conversation {c!r}" for c, n in self.unused_steps().items()
        ]
        if problems:
            raise AssertionError("fake LLM script not followed: " + "; ".join(problems))

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            raise RuntimeError("fake LLM not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`: the API root to configure as `base_url`."""
        return f"http://{self._host}:{self.port}"

    async def start(self) -> FakeLLM:
        """Start listening."""
        self._server = await asyncio.start_server(self._accept, self._host, self._port)
        return self

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeLLM:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await serve_connection(reader, writer, self._handle)
        finally:
            self._tasks.discard(task)

    # ---- answering ------------------------------------------------------------------------

    async def _handle(self, request: HttpRequest, out: HttpResponseWriter) -> None:
        (self.requests if request.method == "POST" else self.gets).append(request)
        for hook in self.on_request:
            hook(request)
        try:
            await self._answer(request, out)
        finally:
            if out.first_byte_at is not None:
                self.first_byte_times.append(out.first_byte_at)

    async def _answer(self, request: HttpRequest, out: HttpResponseWriter) -> None:
        if request.method == "GET" and request.path in self._routes:
            content, kind = self._routes[request.path]
            await out.send(200, {"content-type": kind}, content)
            return
        if request.method == "GET" and request.path.endswith("/v1/models"):
            listed = self.quirks.models(self.served_model)
            if listed is not None:
                await out.send(200, _JSON, listed)
                return
        found = format_for(request.path) if request.method == "POST" else None
        if found is None:
            await out.send(404, _JSON, b'{"error": {"message": "no such fake endpoint"}}')
            return
        name, stream = found
        try:
            body: dict[str, Any] = msgspec.json.decode(request.body) if request.body else {}
        except msgspec.DecodeError:
            await out.send(400, _JSON, b'{"error": {"message": "request body is not JSON"}}')
            return
        model = str(body.get("model") or request.path.rsplit("/", 1)[-1].split(":", 1)[0])
        streaming = bool(body.get("stream")) if stream is None else stream
        refused = self.quirks.refusal(body, streaming)
        if refused is not None:
            status, data = refused
            await out.send(status, _JSON if data else {"content-type": "text/event-stream"}, data)
            return
        conversation, step = self._next_step(request, model)
        holds = self._holds.get(conversation)
        hold = holds.popleft() if holds and isinstance(step, Reply) else None
        if step is None:
            if self.strict:
                message = b'{"error": {"message": "fake LLM: no scripted step left"}}'
                await out.send(500, _JSON, message)
                return
            step = Reply(text=SCRIPT_ENDED)
        await self._render(step, name, streaming, model, body, out, hold)

    def _next_step(self, request: HttpRequest, model: str) -> tuple[str, Step | None]:
        name = request.headers.get("x-fake-conversation")
        if name is None:
            name = model if self._steps.get(model) else "default"
        steps = self._steps.get(name)
        if not steps:
            self.errors.append(f"request to {request.path} found no step in conversation {name!r}")
            return name, None
        return name, steps.popleft()

    async def _render(
        self,
        step: Step,
        fmt: str,
        streaming: bool,
        model: str,
        body: dict[str, Any],
        out: HttpResponseWriter,
        hold: asyncio.Event | None = None,
    ) -> None:
        renderer = FORMATS[fmt]
        match step:
            case Reply():
                if streaming:
                    await self._stream(renderer.stream(step, model, body), step, out, hold)
                else:
                    if hold is not None:
                        await hold.wait()
                    if step.delay:  # a slow server: the whole answer comes late
                        await asyncio.sleep(step.delay)
                    data = msgspec.json.encode(renderer.whole(step, model))
                    await out.send(
                        200,
                        _JSON,
                        data,
                        cut_at=len(data) // 2 if step.cut_after is not None else None,
                    )
            case Fail():
                headers = {**_JSON, **step.headers}
                if step.retry_after is not None:
                    headers["retry-after"] = step.retry_after
                await out.send(step.status, headers, msgspec.json.encode(renderer.error(step)))
            case Html(status=status, title=title):
                page = (
                    f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
                )
                await out.send(status, {"content-type": "text/html"}, page.encode())
            case Empty(status=status, content_type=kind):
                await out.send(status, {"content-type": kind}, b"")
            case Raw():
                await out.start_chunked(step.status, {"content-type": step.content_type})
                for n, chunk in enumerate(step.chunks):
                    if n and step.delay:
                        await asyncio.sleep(step.delay)
                    await out.chunk(chunk.encode())
                await out.end()

    async def _stream(
        self,
        events: list[bytes],
        reply: Reply,
        out: HttpResponseWriter,
        hold: asyncio.Event | None = None,
    ) -> None:
        await out.start_chunked(
            200, {"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        for n, event in enumerate(events):
            if reply.cut_after is not None and n >= reply.cut_after:
                out.abort()
                return
            if n and reply.delay:
                await asyncio.sleep(reply.delay)
            await out.chunk(event)
            if n == 0 and hold is not None:
                await hold.wait()
        await out.end()


# ---- command line ------------------------------------------------------------------------


async def _serve(port: int, script: Script, record: Path | None, args: argparse.Namespace) -> None:
    llm = FakeLLM(
        port=port, server=args.server, context_window=args.context_window, strict=args.strict
    )
    for name, steps in script.conversations.items():
        llm.add(steps, conversation=name)
    if record is not None:
        encoder = msgspec.json.Encoder()

        def write(request: HttpRequest) -> None:
            line = {
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "headers": request.headers,
                "body": request.body.decode("utf-8", "replace"),
            }
            with record.open("ab") as handle:
                handle.write(encoder.encode(line) + b"\n")

        llm.on_request.append(write)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with llm:
        print(f"FAKE_LLM_URL={llm.base_url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """`python -m oxydra.testing.fake_llm [--port N] [--script file.json] [options]`."""
    parser = argparse.ArgumentParser(
        prog="python -m oxydra.testing.fake_llm",
        description="A scripted fake LLM server on loopback (docs/fake-llm.md).",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--script", type=Path, help="JSON list of steps (default: none)")
    parser.add_argument("--record", type=Path, help="append each request here as a JSON line")
    parser.add_argument(
        "--server",
        choices=["openai", "llamacpp", "vllm"],
        default="openai",
        help="behave as this server does (llamacpp: its quirks, seen on a real one)",
    )
    parser.add_argument(
        "--context-window", type=int, default=4096, help="the window a llamacpp/vllm reports"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="answer a request past the script's end with a 500, as tests want",
    )
    args = parser.parse_args(argv)
    script = decode_script(args.script.read_bytes()) if args.script else Script()
    asyncio.run(_serve(args.port, script, args.record, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
