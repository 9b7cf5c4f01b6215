"""An OpenAI-compatible HTTP endpoint: any OpenAI client library or chat app talks to the agent.

`POST /v1/chat/completions` (streaming or not) and `GET /v1/models` (the configured agents),
on a port of its own (`[channels.openai] bind`), with the address written to
`<workspace>/ipc/openai-endpoint`. Rules:

1. Authentication: `Authorization: Bearer <key>`, compared in constant time. The gateway's
   token is the `vm` owner's key; `[[people]] api_key_env` names a variable holding another
   person's key. The key decides the person: their sessions, memory, tools and budget.
2. A request's conversation (see `oxydra.wire.openai_server.conversation_key`) is bound to a
   session of the person (`person_sessions`, channel `openai`), of a deterministic id, so a
   chat app's thread keeps one session across requests and restarts.
3. The turn runs through `GatewayCore` like any other client's, as the agent the `model`
   names. A person not marked trusted sends untrusted input (`untrusted("chat", ...)`).
   Nobody can answer a tool approval over this API, so approvals are answered no at once.
4. A client that disconnects mid-stream cancels its turn. A session busy with another
   client's turn is waited for.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hmac
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from oxydra.channels._follow import SessionFollower
from oxydra.channels._store import ChannelStore
from oxydra.channels.base import ChannelCapabilities, ChannelHealth
from oxydra.channels.openai._http import HttpRequest, HttpServer, Responder
from oxydra.config.people import People, PersonView
from oxydra.core.errors import ChannelError, OxydraError, WireError
from oxydra.core.log import get_logger
from oxydra.core.provenance import Label, untrusted
from oxydra.gateway._hub import SessionChannel
from oxydra.gateway.core import GatewayCore, RefusedError
from oxydra.memory import Memory
from oxydra.wire import gateway as g
from oxydra.wire.openai_server import (
    MAX_REQUEST_BYTES,
    ChatRequest,
    chunk_event,
    completion_body,
    conversation_key,
    decode_chat_request,
    done_event,
    error_body,
    models_body,
    prompt_of,
)

_log = get_logger(__name__)
_NS = uuid.UUID("0b7c3f7e-2f55-4e0a-9a57-3c1d2e9f8a61")


@dataclass
class _Turn:
    queue: asyncio.Queue[g.ServerFrame] = field(default_factory=asyncio.Queue)


class OpenAIEndpoint:
    """The `Channel` serving the OpenAI chat-completions API (see the module docstring)."""

    name = "openai"
    capabilities = ChannelCapabilities()

    def __init__(
        self,
        people: People,
        keys: Mapping[str, str],
        agents: list[str],
        memory: Memory,
        *,
        bind: str = "127.0.0.1:0",
        ipc: Path | None = None,
    ) -> None:
        self.people = people
        self._keys = dict(keys)  # key -> person id
        self.agents = agents
        self.store = ChannelStore(memory, "openai")
        self.bind, self.ipc = bind, ipc
        self.core: GatewayCore | None = None
        self.follower: SessionFollower | None = None
        self.address: tuple[str, int] | None = None
        self.ready = asyncio.Event()
        self._server = HttpServer(self._handle, max_body=MAX_REQUEST_BYTES)
        self._turns: dict[tuple[str, str], _Turn] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # ---- lifecycle and the Channel contract -------------------------------------

    def start(self, core: GatewayCore) -> None:
        """Listen in the background once the gateway is up."""
        self.core = core
        self.follower = SessionFollower(core)
        self._tasks.append(asyncio.create_task(self._listen(), name="openai-listen"))
        self._tasks.append(asyncio.create_task(self._route(), name="openai-route"))

    async def _listen(self) -> None:
        host, _, port = self.bind.rpartition(":")
        try:
            self.address = await self._server.start(host.strip("[]"), int(port))
        except OSError as exc:
            _log.error("openai endpoint not started: cannot listen on %s: %s", self.bind, exc)
            self.ready.set()
            return
        if self.ipc is not None:
            url = f"http://{self.address[0]}:{self.address[1]}/v1"
            tmp = self.ipc / ".openai-endpoint.tmp"
            tmp.write_text(url + "\n")
            tmp.replace(self.ipc / "openai-endpoint")
        self.ready.set()

    async def aclose(self) -> None:
        """Stop serving; running turns end with the gateway."""
        await self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.follower is not None:
            await self.follower.aclose()

    async def send(self, frame: g.ClientFrame) -> None:
        """Clients of this channel speak HTTP, not gateway frames."""
        raise ChannelError(f"the openai endpoint does not send {frame.TYPE} frames")

    async def listen(self) -> AsyncIterator[g.ServerFrame]:
        """The frames of the sessions this endpoint follows (its router is their reader)."""
        assert self.follower is not None
        while True:
            yield (await self.follower.frames.get())[1]

    async def health_check(self) -> ChannelHealth:
        """Healthy while listening."""
        if self.address is None:
            return ChannelHealth(healthy=False, detail=f"not listening on {self.bind}")
        return ChannelHealth(healthy=True, detail=f"http://{self.address[0]}:{self.address[1]}")

    async def _route(self) -> None:
        assert self.follower is not None
        while True:
            session_id, frame = await self.follower.frames.get()
            turn_id = getattr(frame, "turn_id", None) or getattr(
                getattr(frame, "turn", None), "turn_id", None
            )
            turn = self._turns.get((session_id, turn_id)) if turn_id else None
            if turn is not None:
                turn.queue.put_nowait(frame)

    # ---- HTTP --------------------------------------------------------------------

    async def _handle(self, request: HttpRequest, out: Responder) -> None:
        person = self._person(request.headers.get("authorization", ""))
        if person is None:
            body = error_body("invalid API key", "invalid_request_error", "invalid_api_key")
            await out.send(401, body)
            return
        match (request.method, request.path.rstrip("/")):
            case ("GET", "/v1/models"):
                await out.send(200, models_body(self.agents))
            case ("POST", "/v1/chat/completions"):
                await self._complete(person, request, out)
            case _:
                body = error_body(f"no route {request.method} {request.path}", "not_found")
                await out.send(404, body)

    def _person(self, header: str) -> PersonView | None:
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        found = None
        for known, person in self._keys.items():
            if hmac.compare_digest(known.encode(), key.strip().encode()):
                found = person
        return self.people.get(found) if found is not None else None

    async def _complete(self, person: PersonView, request: HttpRequest, out: Responder) -> None:
        try:
            chat = decode_chat_request(request.body)
        except WireError as exc:
            await out.send(400, error_body(str(exc), "invalid_request_error"))
            return
        if chat.model not in self.agents:
            known = ", ".join(self.agents)
            message = f"model `{chat.model}` does not exist; this server has: {known}"
            await out.send(404, error_body(message, "invalid_request_error", "model_not_found"))
            return
        budget = await self._budget(person)
        if budget is not None and budget <= 0:
            message = f"today's budget for {person.display_name} is used up"
            await out.send(429, error_body(message, "insufficient_quota", "insufficient_quota"))
            return
        try:
            channel = await self._session(person, chat)
        except RefusedError as exc:
            await out.send(429, error_body(exc.message, "rate_limit_error", exc.code))
            return
        await self._run(person, chat, channel, budget, out)

    async def _session(self, person: PersonView, chat: ChatRequest) -> SessionChannel:
        assert self.core is not None and self.follower is not None
        key = conversation_key(chat)
        bound = await self.store.session_for(person.id, key)
        channel = None
        if bound is not None:
            with contextlib.suppress(RefusedError):
                channel = await self.core.open_session(person.id, bound)
        if channel is None:
            session_id = str(uuid.uuid5(_NS, f"{person.id}\x00openai\x00{key}\x00{chat.model}"))
            channel = await self.core.open_named(
                person.id,
                session_id,
                channel_origin="openai",
                display_name=f"openai: {prompt_of(chat)[:40]}",
                agent_name=chat.model,
            )
            await self.store.bind(person.id, key, session_id)
        self.follower.follow(channel)
        return channel

    async def _budget(self, person: PersonView) -> float | None:
        if person.max_cost_usd_per_day is None:
            return None
        return person.max_cost_usd_per_day - await self.store.spent_today(person.id)

    async def _run(
        self,
        person: PersonView,
        chat: ChatRequest,
        channel: SessionChannel,
        budget: float | None,
        out: Responder,
    ) -> None:
        assert self.core is not None
        turn_id = f"oa-{uuid.uuid4().hex}"
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        turn = self._turns[(channel.session_id, turn_id)] = _Turn()
        owner = object()
        label: Label | None = None if person.trusted else untrusted("chat", f"{person.id} via api")
        try:
            while True:
                try:
                    self.core.submit_turn(
                        channel, turn_id, turn_id, prompt_of(chat), label=label, owner=owner,
                        max_cost_usd=budget, tools=person.tools,
                    )  # fmt: skip
                    break
                except RefusedError as exc:
                    if exc.code not in ("turn_active", "turn_limit"):
                        await out.send(429, error_body(exc.message, "rate_limit_error", exc.code))
                        return
                await asyncio.sleep(0.2)  # another client's turn in this session
            writer = _Stream(out, completion_id, chat) if chat.stream else _Whole(
                out, completion_id, chat)  # fmt: skip
            await self._relay(person, turn, owner, writer)
        except (ConnectionError, asyncio.CancelledError):
            if channel.active_turn is not None and channel.active_turn.turn_id == turn_id:
                with contextlib.suppress(OxydraError):
                    self.core.cancel(channel)  # the client went away
            raise
        finally:
            self._turns.pop((channel.session_id, turn_id), None)

    async def _relay(self, person: PersonView, turn: _Turn, owner: object, writer: _Writer) -> None:
        assert self.core is not None
        usage: tuple[int, int] | None = None
        while True:
            frame = await turn.queue.get()
            match frame:
                case g.AssistantDelta():
                    await writer.delta(frame.delta)
                case g.ApprovalRequest():  # no person can answer over this API
                    self.core.approvals.answer(person.id, frame.approval_id, False, owner)
                case g.Usage():
                    usage = (frame.turn.input_tokens, frame.turn.output_tokens)
                    if frame.turn.cost_usd:
                        await self.store.add_spend(person.id, frame.turn.cost_usd)
                case g.TurnCompleted():
                    await writer.finish(frame.response.message.text, usage)
                    return
                case g.TurnCancelled():
                    await writer.fail(499, "the turn was cancelled", "cancelled")
                    return
                case g.ErrorFrame() if frame.turn is not None:
                    await writer.fail(500, frame.message, frame.code or "turn_failed")
                    return


class _Writer(abc.ABC):
    """How one request's answer is written: whole, or as an event stream."""

    def __init__(self, out: Responder, completion_id: str, chat: ChatRequest) -> None:
        self.out, self.id, self.chat = out, completion_id, chat
        self.text = ""

    async def delta(self, text: str) -> None:
        self.text += text

    @abc.abstractmethod
    async def finish(self, text: str, usage: tuple[int, int] | None) -> None:
        """The turn completed with `text`."""

    async def fail(self, status: int, message: str, code: str) -> None:
        await self.out.send(status, error_body(message, "server_error", code))


class _Whole(_Writer):
    async def finish(self, text: str, usage: tuple[int, int] | None) -> None:
        await self.out.send(200, completion_body(self.id, self.chat.model, text or self.text,
                                                 usage=usage))  # fmt: skip


class _Stream(_Writer):
    async def _begin(self) -> None:
        if not self.out.started:
            await self.out.start(200, "text/event-stream")
            await self.out.write(chunk_event(self.id, self.chat.model, role=True, delta=""))

    async def delta(self, text: str) -> None:
        await self._begin()
        self.text += text
        await self.out.write(chunk_event(self.id, self.chat.model, delta=text))

    async def finish(self, text: str, usage: tuple[int, int] | None) -> None:
        await self._begin()
        if text.startswith(self.text) and len(text) > len(self.text):
            await self.out.write(
                chunk_event(self.id, self.chat.model, delta=text[len(self.text) :])
            )
        await self.out.write(chunk_event(self.id, self.chat.model, finish="stop"))
        options = self.chat.stream_options
        if options is not None and options.include_usage and usage is not None:
            await self.out.write(chunk_event(self.id, self.chat.model, usage=usage))
        await self.out.write(done_event())
        await self.out.end()

    async def fail(self, status: int, message: str, code: str) -> None:
        if not self.out.started:
            await super().fail(status, message, code)
            return
        await self.out.write(b"data: " + error_body(message, "server_error", code) + b"\n\n")
        await self.out.write(done_event())
        await self.out.end()
