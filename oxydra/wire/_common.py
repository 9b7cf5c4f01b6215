"""Pieces every provider wire format shares: the request shape, JSON decoding, error bodies.

Nothing here does I/O: request builders return a `WireRequest` (a path relative to the API
root, a query and a JSON-able body), parsers take bytes and return our types or raise
`WireError`.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Protocol, TypeVar

import msgspec

from oxydra.core.errors import (
    AuthenticationError,
    BadRequestError,
    ContextTooLongError,
    ProviderError,
    ProviderHTTPError,
    RateLimitError,
    ServerError,
    WireError,
)
from oxydra.core.messages import MediaPart, Message
from oxydra.core.stream import StreamItem
from oxydra.wire._depth import MAX_JSON_DEPTH, nesting_exceeds
from oxydra.wire.sse import SSEEvent

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


class WireRequest(msgspec.Struct, frozen=True, kw_only=True):
    """An HTTP request a driver must send.

    Attributes:
        path: the path below the API root, starting with the version segment (`/v1/...`).
        body: the JSON body, as plain dicts and lists.
        query: query parameters to add (`alt=sse` for Gemini streams).
    """

    path: str
    body: dict[str, Any]
    query: dict[str, str] = {}

    def encode(self) -> bytes:
        """The body as JSON bytes."""
        return _encoder.encode(self.body)


class StreamTranslator(Protocol):
    """Turns the decoded SSE events of one response into stream items.

    `done` turns true once the provider said the answer is complete, so the reader can stop
    even when the server keeps the connection open.
    """

    @property
    def done(self) -> bool:
        """Whether the terminal event has been seen."""
        ...

    def on_event(self, event: SSEEvent) -> list[StreamItem]:
        """Translate one event; unknown events give `[]`, garbage raises `WireError`."""
        ...

    def on_eof(self) -> list[StreamItem]:
        """The stream ended: `[ConnectionLost]` when it ended before the terminal event."""
        ...


def decode(data: bytes | str, decoder: msgspec.json.Decoder[T], what: str) -> T:
    """Decode JSON into a view Struct, turning msgspec's error into `WireError`.

    Text of at most `2 * MAX_JSON_DEPTH` characters is not measured: it cannot nest deep
    enough for msgspec's recursion to matter (what nests past the bound there is unclosed,
    and fails as malformed); a streamed event is usually that short.
    """
    if len(data) > 2 * MAX_JSON_DEPTH and nesting_exceeds(data):
        raise WireError(f"malformed {what}: nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise WireError(f"malformed {what}: {exc}") from exc


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What we could read from an error body.

    Attributes:
        message: the provider's message, or a short description of the body.
        type: the provider's error type or status word (`invalid_request_error`,
            `RESOURCE_EXHAUSTED`).
        code: the provider's error code, when it gave one (`context_length_exceeded`).
        retry_delay: seconds from a Google `RetryInfo` detail, when present.
    """

    message: str
    type: str | None = None
    code: str | None = None
    retry_delay: float | None = None


class _ErrorDetail(msgspec.Struct):
    type_: str | None = msgspec.field(default=None, name="@type")
    retryDelay: str | None = None


class _ErrorObject(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    status: str | None = None
    details: list[_ErrorDetail] | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorObject | str | None = None
    message: str | None = None
    detail: str | None = None


_envelope = msgspec.json.Decoder(_ErrorEnvelope | list[_ErrorEnvelope])
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)s")
# Long enough for a server's whole explanation (llama.cpp's grammar errors run past 1 KB),
# short enough for a log line and a chat message.
MAX_ERROR_MESSAGE = 4096


def parse_error_body(body: bytes) -> ErrorInfo:
    """Read the message out of an OpenAI, Anthropic or Gemini error envelope.

    Falls back to the HTML page's title or the start of the text; at most
    `MAX_ERROR_MESSAGE` characters.
    """
    try:
        parsed = _envelope.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ErrorInfo(message=describe_body(body))
    envelope = parsed[0] if isinstance(parsed, list) and parsed else parsed
    if not isinstance(envelope, _ErrorEnvelope):
        return ErrorInfo(message=describe_body(body))
    error = envelope.error
    if isinstance(error, _ErrorObject):
        message = error.message or envelope.message or describe_body(body)
        code = str(error.code) if isinstance(error.code, str) else None
        return ErrorInfo(
            message=message[:MAX_ERROR_MESSAGE],
            type=error.type or error.status,
            code=code,
            retry_delay=_retry_delay(error.details or []),
        )
    message = error or envelope.message or envelope.detail or describe_body(body)
    return ErrorInfo(message=message[:MAX_ERROR_MESSAGE])


def _retry_delay(details: list[_ErrorDetail]) -> float | None:
    for detail in details:
        if detail.retryDelay and (match := _DURATION.fullmatch(detail.retryDelay.strip())):
            return float(match.group(1))
    return None


def describe_body(body: bytes) -> str:
    """A short, printable description of a body we could not parse as an error envelope."""
    if not body.strip():
        return "empty body"
    if (title := _html_title(body[:65536])) is not None:
        return f"HTML page: {title}"[:MAX_ERROR_MESSAGE]
    text = body[:MAX_ERROR_MESSAGE].decode("utf-8", "replace").strip()
    return " ".join(text.split())


def _html_title(page: bytes) -> str | None:
    """The first `<title ...>...</title>` of an HTML page, found in one pass.

    Each search starts where the previous one stopped (the body is the server's, or a
    proxy's: a regex with a lazy scan went quadratic on a page of unclosed titles).
    """
    lower = page.lower()
    start = lower.find(b"<title")
    opened = lower.find(b">", start) if start >= 0 else -1
    closed = lower.find(b"</title>", opened) if opened >= 0 else -1
    if closed < 0:
        return None
    return page[opened + 1 : closed].decode("utf-8", "replace").strip()


_TOO_LONG = re.compile(
    r"context[_ ]length[_ ]exceeded|maximum context length|context window|prompt is too long"
    r"|exceeds the maximum number of tokens|too many (input )?tokens|input is too long"
    r"|reduce the length of the messages|request too large",
    re.IGNORECASE,
)


def is_context_too_long(info: ErrorInfo) -> bool:
    """Whether an error body says the prompt does not fit the model's window."""
    return bool(_TOO_LONG.search(f"{info.code or ''} {info.type or ''} {info.message}"))


def error_for_status(
    status: int,
    info: ErrorInfo,
    *,
    provider: str,
    body: str = "",
    retry_after: float | None = None,
) -> ProviderHTTPError:
    """The typed error for an HTTP error status and the body's message."""
    cls: type[ProviderHTTPError]
    if status in (401, 403):
        cls = AuthenticationError
    elif status == 429:
        cls = RateLimitError
    elif status >= 500:
        cls = ServerError
    elif is_context_too_long(info) or status == 413:
        cls = ContextTooLongError
    else:
        cls = BadRequestError
    delay = retry_after if retry_after is not None else info.retry_delay
    return cls(info.message, status=status, provider=provider, body=body, retry_after=delay)


# Status an error event inside a 200 stream stands for, by the provider's error type.
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "INVALID_ARGUMENT": 400,
    "authentication_error": 401,
    "UNAUTHENTICATED": 401,
    "permission_error": 403,
    "PERMISSION_DENIED": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "RESOURCE_EXHAUSTED": 429,
    "insufficient_quota": 429,
    "overloaded_error": 529,
    "UNAVAILABLE": 503,
}


def stream_error(provider: str, info: ErrorInfo) -> ProviderHTTPError:
    """The typed error for an error event sent inside a stream (status 500 when unknown)."""
    status = _STREAM_ERROR_STATUS.get(info.type or "", 0) or _STREAM_ERROR_STATUS.get(
        info.code or "", 500
    )
    return error_for_status(status, info, provider=provider, body=info.message)


def data_uri(part: MediaPart) -> str:
    """`data:<mime>;base64,<...>`, the form OpenAI takes inline images in."""
    return f"data:{part.mime_type};base64,{b64(part.data)}"


def b64(data: bytes) -> str:
    """Standard base64 text of `data`."""
    return base64.b64encode(data).decode("ascii")


class MediaProfile(Protocol):
    """What a provider profile says about media (every codec's profile has both)."""

    @property
    def media(self) -> frozenset[str]: ...

    @property
    def tool_images(self) -> bool: ...


def tool_images(message: Message, profile: MediaProfile) -> list[MediaPart]:
    """The images a tool result carries (an MCP server's), when the model takes images.

    Empty otherwise: the tool's own text already names what was attached, so a model
    without image input reads a note instead.
    """
    if message.role != "tool" or not profile.tool_images or "image" not in profile.media:
        return []
    return [p for p in message.media if media_kind(p.mime_type) == "image"]


def media_kind(mime_type: str) -> str:
    """Our modality word for a MIME type: image, audio, video, pdf or document."""
    major = mime_type.split("/", 1)[0]
    if major in ("image", "audio", "video"):
        return major
    return "pdf" if mime_type == "application/pdf" else "document"


def unsupported_media(provider: str, part: MediaPart) -> ProviderError:
    """The error for an attachment the wire format cannot carry."""
    return ProviderError(
        f"{provider} cannot carry a {part.mime_type} attachment",
        provider=provider,
        hint="choose a model whose catalog entry lists this input modality",
    )


def system_text(messages: tuple[Message, ...]) -> str:
    """The system messages joined with a blank line, as APIs with one system slot take them."""
    return "\n\n".join(m.text for m in messages if m.role == "system" and m.text)


def tool_output_object(text: str) -> dict[str, Any]:
    """A tool's output as an object: itself when it is a JSON object, else `{"result": text}`."""
    if nesting_exceeds(text):  # a file the model wrote can nest 100,000 deep
        return {"result": text}
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return {"result": text}
    return value if isinstance(value, dict) else {"result": value}
