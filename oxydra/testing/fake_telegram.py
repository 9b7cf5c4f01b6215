"""A loopback fake of the Telegram Bot API, at the wire, for tests and benchmarks.

It serves `/bot<token>/<method>` (JSON, form or multipart bodies) and
`/file/bot<token>/<path>` with the answers Telegram's documentation shows, keeps what was
sent per chat, and injects faults: any method can be told to fail its next calls (429 with
`retry_after`, 502, a description such as "can't parse entities"), long polls can be
stalled (held open, answered with nothing) or trickled (headers, then a byte now and then, so
a client's read timeout never fires), chats can be deleted, and the token can be wrong.

Checks done as Telegram does them: text over 4096 characters → "message is too long"; an
edit to the same text → "message is not modified"; HTML whose tags do not balance or are not
in Telegram's set → "can't parse entities"; an unknown chat → "chat not found".
`getUpdates` confirms updates below `offset`, and returns the rest (redelivery); a long poll
still open when another starts is ended with Telegram's 409 "terminated by other getUpdates
request" (two processes polling one bot), counted in `conflicts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from oxydra.testing._fake_http import HttpRequest, HttpResponseWriter, serve_connection

_ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
    "tg-emoji",
}


@dataclass
class Sent:
    """One message as the fake keeps it (edits replace `text`; `edits` counts them)."""

    chat_id: int
    message_id: int
    text: str
    parse_mode: str | None = None
    thread_id: int | None = None
    kind: str = "text"
    file_name: str | None = None
    data: bytes = b""
    edits: int = 0
    history: list[str] = field(default_factory=list)


@dataclass
class Fault:
    """What the next matching call answers instead of succeeding."""

    status: int
    description: str
    retry_after: int | None = None
    when: Callable[[dict[str, Any]], bool] | None = None


class _HtmlCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED_TAGS:
            self.error = f'unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.error = f'can\'t find end tag corresponding to start tag "{tag}"'


def html_problem(text: str) -> str | None:
    """Why Telegram would refuse `text` as HTML, or None."""
    check = _HtmlCheck()
    check.feed(text)
    check.close()
    if check.error is None and check.stack:
        check.error = f'can\'t find end tag corresponding to start tag "{check.stack[-1]}"'
    return check.error


class FakeTelegram:
    """The fake Bot API; `base_url` goes into `[channels.telegram] api_base_url`."""

    def __init__(self, token: str = "123456:TEST-token", *, bot_username: str = "oxy_bot") -> None:
        self.token = token
        self.bot_username = bot_username
        self.updates: list[dict[str, Any]] = []
        self.confirmed = 0
        self.sent: dict[int, list[Sent]] = defaultdict(list)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.files: dict[str, bytes] = {}
        self.deleted_chats: set[int] = set()
        self.commands: list[dict[str, Any]] = []
        self.stall_polls = 0
        self.trickle_polls = 0
        self.polls_started = 0
        self.conflicts = 0
        self._polling: asyncio.Event | None = None  # set to end the open long poll with 409
        self.changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._server: asyncio.Server | None = None
        self._new_update = asyncio.Event()
        self._held: set[asyncio.Task[None]] = set()

    # ---- lifecycle ---------------------------------------------------------------

    async def start(self) -> FakeTelegram:
        """Listen on 127.0.0.1 at a free port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        """Stop listening and drop held requests."""
        for task in list(self._held):
            task.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # ---- what tests do -----------------------------------------------------------

    def user_message(
        self,
        text: str | None = None,
        *,
        user_id: int = 111,
        chat_id: int | None = None,
        thread_id: int | None = None,
        chat_type: str = "private",
        **extra: Any,
    ) -> int:
        """Queue an update with a message from `user_id`; returns its update id."""
        chat = chat_id if chat_id is not None else user_id
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat, "type": chat_type, "is_forum": thread_id is not None},
            "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
            **extra,
        }
        if text is not None:
            message["text"] = text
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        return self.raw_update({"message": message})

    def raw_update(self, body: dict[str, Any]) -> int:
        """Queue any update body (malformed ones too); returns its update id."""
        update_id = next(self._ids)
        self.updates.append({"update_id": update_id, **body})
        self._new_update.set()
        return update_id

    def add_file(self, data: bytes) -> str:
        """A file the bot can download; returns its file id."""
        file_id = f"file{len(self.files) + 1}"
        self.files[file_id] = data
        return file_id

    def fail(
        self,
        method: str,
        status: int,
        description: str,
        *,
        retry_after: int | None = None,
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Make the next `times` calls of `method` (whose parameters pass `when`) fail."""
        self.faults[method] += [Fault(status, description, retry_after, when)] * times

    def texts(self, chat_id: int) -> list[str]:
        """The current text of every message sent to a chat, in order."""
        return [s.text for s in self.sent[chat_id]]

    async def wait_for(self, predicate: Any, timeout: float = 20) -> None:
        """Wait until `predicate(self)` holds (checked after every call the fake answers)."""
        async with asyncio.timeout(timeout):
            async with self.changed:
                await self.changed.wait_for(lambda: predicate(self))

    # ---- the server --------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._held.add(task)
        try:
            await serve_connection(reader, writer, self._handle)
        except asyncio.CancelledError:
            writer.transport.abort()  # closing: a held poll ends here, not in the loop's logs
        finally:
            self._held.discard(task)

    async def _handle(self, request: HttpRequest, out: HttpResponseWriter) -> None:
        parts = request.path.strip("/").split("/")
        if len(parts) >= 3 and parts[0] == "file" and parts[1] == f"bot{self.token}":
            data = self.files.get("/".join(parts[2:]))
            if data is None:
                await out.send(404, {}, b"not found")
            else:
                await out.send(200, {"content-type": "application/octet-stream"}, data)
            return
        if len(parts) != 2 or not parts[0].startswith("bot"):
            await out.send(404, {}, b'{"ok":false,"error_code":404,"description":"Not Found"}')
            return
        if parts[0][3:] != self.token:
            await self._error(out, 401, "Unauthorized")
            return
        method, params = parts[1], _params(request)
        self.calls.append((method, params))
        faults = self.faults.get(method)
        if faults and (faults[0].when is None or faults[0].when(params)):
            fault = faults.pop(0)
            await self._error(out, fault.status, fault.description, fault.retry_after)
            await self._notify()
            return
        if method == "getUpdates":
            await self._get_updates(params, out)
        else:
            status, result = self._answer(method, params)
            if status != 200:
                await self._error(out, status, str(result))
            else:
                await _ok(out, result)
        await self._notify()

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def _error(
        self, out: HttpResponseWriter, status: int, description: str, retry_after: int | None = None
    ) -> None:
        if status == 400 and not description.startswith("Bad Request"):
            description = f"Bad Request: {description}"
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        await out.send(status, {"content-type": "application/json"}, msgspec.json.encode(body))

    async def _get_updates(self, params: dict[str, Any], out: HttpResponseWriter) -> None:
        self.polls_started += 1
        offset = int(params.get("offset", 0) or 0)
        if offset:
            self.confirmed = max(self.confirmed, offset - 1)
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        await self._notify()
        if self.stall_polls > 0:
            self.stall_polls -= 1
            await asyncio.Event().wait()  # held open forever (until the client gives up)
        if self.trickle_polls > 0:
            self.trickle_polls -= 1
            await out.start_chunked(200, {"content-type": "application/json"})
            while True:
                await out.chunk(b" ")
                await asyncio.sleep(0.2)
        if self._polling is not None:
            self._polling.set()  # Telegram ends the older poll
        ended = self._polling = asyncio.Event()
        timeout = float(params.get("timeout", 0) or 0)
        deadline = time.monotonic() + timeout
        while not self.updates and not ended.is_set() and time.monotonic() < deadline:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    _first(self._new_update, ended, out.gone), deadline - time.monotonic()
                )
            if out.gone.is_set():
                break
        if self._polling is ended:
            self._polling = None
        if out.gone.is_set():
            return  # the client gave the poll up: nothing to answer, no conflict
        if ended.is_set():
            self.conflicts += 1
            description = "Conflict: terminated by other getUpdates request; make sure that "
            await self._error(out, 409, description + "only one bot instance is running")
            return
        limit = int(params.get("limit", 100) or 100)
        await _ok(out, self.updates[:limit])

    def _answer(self, method: str, params: dict[str, Any]) -> tuple[int, Any]:
        match method:
            case "getMe":
                return 200, {
                    "id": int(self.token.split(":")[0]),
                    "is_bot": True,
                    "first_name": "Oxy",
                    "username": self.bot_username,
                }
            case "deleteWebhook" | "sendChatAction":
                return 200, True
            case "setMyCommands":
                self.commands = list(params.get("commands", []))
                return 200, True
            case "sendMessage":
                return self._send(params, "text", params.get("text", ""))
            case "editMessageText":
                return self._edit(params)
            case "sendPhoto" | "sendDocument" | "sendAudio" | "sendVoice" | "sendVideo":
                kind = method[4:].lower()
                return self._send(params, kind, params.get("caption", ""))
            case "getFile":
                file_id = params.get("file_id", "")
                if file_id not in self.files:
                    return 400, "Bad Request: invalid file_id"
                return 200, {
                    "file_id": file_id,
                    "file_size": len(self.files[file_id]),
                    "file_path": file_id,
                }
        return 404, "Not Found: method not found"

    def _chat(self, params: dict[str, Any]) -> int | None:
        try:
            chat = int(params.get("chat_id", ""))
        except (TypeError, ValueError):
            return None
        return None if chat in self.deleted_chats else chat

    def _send(self, params: dict[str, Any], kind: str, text: str) -> tuple[int, Any]:
        chat = self._chat(params)
        if chat is None:
            return 400, "Bad Request: chat not found"
        problem = _text_problem(text, params.get("parse_mode"), allow_empty=kind != "text")
        if problem:
            return 400, problem
        thread = params.get("message_thread_id")
        sent = Sent(
            chat_id=chat,
            message_id=next(self._message_ids),
            text=text,
            parse_mode=params.get("parse_mode"),
            kind=kind,
            thread_id=int(thread) if thread else None,
        )
        upload = params.get(kind)
        if isinstance(upload, tuple):
            sent.file_name, sent.data = upload
        self.sent[chat].append(sent)
        return 200, _message(sent)

    def _edit(self, params: dict[str, Any]) -> tuple[int, Any]:
        chat = self._chat(params)
        if chat is None:
            return 400, "Bad Request: chat not found"
        message_id = int(params.get("message_id", 0))
        found = next((s for s in self.sent[chat] if s.message_id == message_id), None)
        if found is None:
            return 400, "Bad Request: message to edit not found"
        text = params.get("text", "")
        problem = _text_problem(text, params.get("parse_mode"), allow_empty=False)
        if problem:
            return 400, problem
        if text == found.text and params.get("parse_mode") == found.parse_mode:
            return 400, (
                "Bad Request: message is not modified: specified new message content "
                "and reply markup are exactly the same"
            )
        found.history.append(found.text)
        found.text, found.parse_mode = text, params.get("parse_mode")
        found.edits += 1
        return 200, _message(found)


def _text_problem(text: str, parse_mode: str | None, *, allow_empty: bool) -> str | None:
    if not text and not allow_empty:
        return "Bad Request: message text is empty"
    if parse_mode == "HTML":
        problem = html_problem(text)
        if problem:
            return f"Bad Request: can't parse entities: {problem}"
        visible = _visible(text)
    else:
        visible = text
    if len(visible) > 4096:
        return "Bad Request: message is too long"
    return None


def _visible(text: str) -> str:
    class Strip(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.out: list[str] = []

        def handle_data(self, data: str) -> None:
            self.out.append(data)

    strip = Strip()
    strip.feed(text)
    strip.close()
    return "".join(strip.out)


def _message(sent: Sent) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": sent.message_id,
        "date": int(time.time()),
        "chat": {"id": sent.chat_id, "type": "private"},
        "text": sent.text,
    }
    if sent.thread_id:
        body["message_thread_id"] = sent.thread_id
    return body


async def _ok(out: HttpResponseWriter, result: Any) -> None:
    body = msgspec.json.encode({"ok": True, "result": result})
    await out.send(200, {"content-type": "application/json"}, body)


def _params(request: HttpRequest) -> dict[str, Any]:
    """Parameters from the query, a JSON body, a form, or a multipart upload."""
    params: dict[str, Any] = dict(request.query)
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json") and request.body:
        decoded = msgspec.json.decode(request.body)
        if isinstance(decoded, dict):
            params.update(decoded)
    elif kind.startswith("application/x-www-form-urlencoded"):
        params.update(parse_qsl(request.body.decode()))
    elif kind.startswith("multipart/form-data"):
        head = f"Content-Type: {kind}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + request.body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                payload = b""
            filename = part.get_filename()
            if filename is not None:
                params[str(name)] = (filename, payload)
            else:
                params[str(name)] = payload.decode()
    return params


async def _first(*events: asyncio.Event) -> None:
    """Wait until any of `events` is set."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
