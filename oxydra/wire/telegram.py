"""Telegram Bot API, sans-I/O: updates in, API results decoded, chat contexts and commands.

Only the fields we read are declared (unknown ones are ignored, so Bot API additions never
break us). Facts encoded here (core.telegram.org/bots/api):

1. Every method answers `{"ok": true, "result": ...}` or `{"ok": false, "error_code": N,
   "description": "...", "parameters": {"retry_after": S}}`; `decode_result` returns the
   result or raises `TelegramApiError` with those fields.
2. `getUpdates` confirms updates only when a later call passes `offset > update_id`, so a
   batch that was never confirmed is delivered again (the basis of crash-safe ingress).
3. A forum topic is `"<chat_id>:<message_thread_id>"`; replies in the General topic carry a
   thread id that is not a topic (`is_topic_message` false), and General must be addressed
   without `message_thread_id`, so such messages map to `"<chat_id>"` (upstream's rule).
4. Commands are text messages starting with `/name`, optionally `@botname`; a command
   addressed to another bot is ordinary text.
"""

from __future__ import annotations

import msgspec

from oxydra.core.errors import WireError

__all__ = [
    "BOT_COMMANDS",
    "ChatContext",
    "Command",
    "MediaRef",
    "TelegramApiError",
    "TgChat",
    "TgMessage",
    "TgUpdate",
    "TgUser",
    "decode_result",
    "decode_updates",
    "media_of",
    "parse_command",
    "parse_context",
]

BOT_COMMANDS: tuple[tuple[str, str], ...] = (
    ("new", "Start a new session (optional name)"),
    ("sessions", "List your sessions"),
    ("switch", "Switch to a session by id or prefix"),
    ("cancel", "Cancel the running turn"),
    ("cancelall", "Cancel all your running turns"),
    ("status", "Session, taint and channel health"),
    ("approve", "Approve the pending tool call"),
    ("deny", "Deny the pending tool call"),
    ("help", "What this bot understands"),
    ("start", "Same as /help"),
)
"""Registered with `setMyCommands` (upstream's seven, `/start`, and approvals)."""


class TgUser(msgspec.Struct, frozen=True, kw_only=True):
    """`User`: the sender."""

    id: int
    is_bot: bool = False
    first_name: str = ""
    username: str | None = None


class TgChat(msgspec.Struct, frozen=True, kw_only=True):
    """`Chat`: where the message was sent."""

    id: int
    type: str = "private"
    title: str | None = None
    is_forum: bool = False


class _File(msgspec.Struct, frozen=True, kw_only=True):
    file_id: str
    file_size: int | None = None
    mime_type: str | None = None
    file_name: str | None = None


class TgMessage(msgspec.Struct, frozen=True, kw_only=True):
    """`Message`, the fields a channel reads."""

    message_id: int
    chat: TgChat
    date: int = 0
    from_: TgUser | None = msgspec.field(default=None, name="from")
    text: str | None = None
    caption: str | None = None
    message_thread_id: int | None = None
    is_topic_message: bool = False
    forward_origin: dict[str, object] | None = None
    forward_from: TgUser | None = None
    photo: list[_File] = []
    voice: _File | None = None
    audio: _File | None = None
    video: _File | None = None
    video_note: _File | None = None
    document: _File | None = None
    media_group_id: str | None = None


class TgUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """`Update`; only `message` is asked for (`allowed_updates=["message"]`)."""

    update_id: int
    message: TgMessage | None = None
    edited_message: TgMessage | None = None


class TelegramApiError(WireError):
    """The Bot API said `ok: false` (or sent something that is not its envelope)."""

    def __init__(
        self, description: str, *, error_code: int = 0, retry_after: float | None = None
    ) -> None:
        super().__init__(f"telegram: {error_code or 'bad answer'} {description}")
        self.description = description
        self.error_code = error_code
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Rate limits and server errors pass; a 4xx other than 429 will not."""
        return self.error_code == 429 or self.error_code >= 500 or self.error_code == 0

    def says(self, fragment: str) -> bool:
        """Whether the description contains `fragment` (case-insensitive: libraries and
        server versions capitalise differently)."""
        return fragment.lower() in self.description.lower()


class _Parameters(msgspec.Struct, frozen=True, kw_only=True):
    retry_after: float | None = None


class _Envelope(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    result: msgspec.Raw = msgspec.Raw(b"null")
    error_code: int = 0
    description: str = ""
    parameters: _Parameters | None = None


_envelope = msgspec.json.Decoder(_Envelope)
_updates = msgspec.json.Decoder(list[msgspec.Raw])
_update = msgspec.json.Decoder(TgUpdate)
_update_id = msgspec.json.Decoder(dict[str, object])


def decode_result(body: bytes, status: int = 200) -> msgspec.Raw:
    """The `result` of an API answer.

    Raises:
        TelegramApiError: `ok` is false (with the code, description and `retry_after`), or
            the body is not the API's envelope (a proxy's HTML page, a cut body).
    """
    try:
        envelope = _envelope.decode(body)
    except msgspec.DecodeError:
        text = body[:200].decode("utf-8", "replace")
        code = status if status >= 400 else 0  # a cut or garbled 200: try again
        raise TelegramApiError(f"HTTP {status}: {text}", error_code=code) from None
    if not envelope.ok:
        retry = envelope.parameters.retry_after if envelope.parameters else None
        code = envelope.error_code or status
        raise TelegramApiError(envelope.description, error_code=code, retry_after=retry)
    return envelope.result


def decode_updates(result: msgspec.Raw) -> tuple[list[TgUpdate], list[tuple[int, str]]]:
    """The updates of a `getUpdates` result, and `(update_id, reason)` for malformed ones.

    A malformed update must not stop the poller (its id still has to be confirmed, or it
    comes back forever), so one that has a readable `update_id` is reported, not raised.

    Raises:
        TelegramApiError: the result is not a list.
    """
    try:
        raws = _updates.decode(result)
    except msgspec.DecodeError as exc:
        raise TelegramApiError(f"getUpdates result is not a list: {exc}") from None
    good: list[TgUpdate] = []
    bad: list[tuple[int, str]] = []
    for raw in raws:
        try:
            good.append(_update.decode(raw))
        except msgspec.DecodeError as exc:
            try:
                update_id = _update_id.decode(raw).get("update_id")
            except msgspec.DecodeError:
                update_id = None
            if isinstance(update_id, int) and not isinstance(update_id, bool):
                bad.append((update_id, str(exc)))
    return good, bad


class ChatContext(msgspec.Struct, frozen=True, kw_only=True):
    """A chat, or a forum topic in one."""

    chat_id: int
    thread_id: int | None = None

    @property
    def key(self) -> str:
        """`"<chat_id>"` or `"<chat_id>:<thread_id>"` (upstream's `channel_context_id`)."""
        return str(self.chat_id) if self.thread_id is None else f"{self.chat_id}:{self.thread_id}"

    @classmethod
    def of(cls, message: TgMessage) -> ChatContext:
        """The context a message belongs to (General-topic replies map to the chat)."""
        topic = message.message_thread_id if message.is_topic_message else None
        return cls(chat_id=message.chat.id, thread_id=topic if topic != 1 else None)


def parse_context(key: str) -> ChatContext:
    """The inverse of `ChatContext.key`.

    Raises:
        WireError: the key is not `<int>` or `<int>:<int>`.
    """
    chat, sep, thread = key.partition(":")
    try:
        return ChatContext(chat_id=int(chat), thread_id=int(thread) if sep else None)
    except ValueError:
        raise WireError(f"bad telegram chat context {key!r}") from None


class Command(msgspec.Struct, frozen=True, kw_only=True):
    """A bot command: its name (lower case, without `/`) and the rest of the line."""

    name: str
    argument: str = ""


_KNOWN = frozenset(name for name, _ in BOT_COMMANDS)


def parse_command(text: str, bot_username: str | None) -> Command | None:
    """The known command `text` is, or None (unknown `/x` is an ordinary prompt, as upstream)."""
    if not text.startswith("/"):
        return None
    head, _, rest = text[1:].partition(" ")
    head, _, addressee = head.partition("@")
    if addressee and (bot_username is None or addressee.lower() != bot_username.lower()):
        return None
    name = head.strip().lower()
    if name not in _KNOWN:
        return None
    return Command(name=name, argument=rest.strip())


class MediaRef(msgspec.Struct, frozen=True, kw_only=True):
    """One file attached to a message, before download."""

    file_id: str
    mime_type: str
    size: int | None
    kind: str


def media_of(message: TgMessage) -> list[MediaRef]:
    """The files of a message: the largest photo, voice, audio, video, video note, document."""
    found: list[MediaRef] = []
    if message.photo:
        best = max(message.photo, key=lambda p: p.file_size or 0)
        found.append(
            MediaRef(
                file_id=best.file_id, mime_type="image/jpeg", size=best.file_size, kind="photo"
            )
        )
    defaults = (
        ("voice", "audio/ogg"),
        ("audio", "audio/mpeg"),
        ("video", "video/mp4"),
        ("video_note", "video/mp4"),
        ("document", "application/octet-stream"),
    )
    for kind, mime in defaults:
        item: _File | None = getattr(message, kind)
        if item is not None:
            found.append(
                MediaRef(
                    file_id=item.file_id,
                    mime_type=item.mime_type or mime,
                    size=item.file_size,
                    kind=kind,
                )
            )
    return found
