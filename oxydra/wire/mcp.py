"""Sans-I/O JSON-RPC 2.0 / Model Context Protocol codec for the client side (and `mcp serve`).

Theory of operation:

1. `McpClientProtocol` owns request ids and the negotiated protocol revision. Every outgoing
   message is built by it (`request`, `notify`, `respond`) and returned as bytes without a
   trailing newline; a transport adds its own framing (a `\\n` on stdio, an HTTP body).
2. Inbound bytes go through `decode_messages(data)`: one JSON value (an object or, from older
   peers, a batch array) becomes a list of typed events — `Response`, `ErrorResponse`,
   `ServerRequest`, `ServerNotification` — or a `Malformed` event carrying a short excerpt.
   Nothing here raises on peer garbage except `LineSplitter` on a line over its limit.
3. Handshake era (2025-06-18, 2025-11-25): `initialize` offers the newest revision we speak;
   the server's answer must name one of `HANDSHAKE_VERSIONS`, else `WireError` (the spec says
   the client must then disconnect). `notifications/initialized` follows.
4. Stateless era (2026-07-28): no `initialize`; the client sends `server/discover` and, once
   it names 2026-07-28 among `supportedVersions`, every request's `params._meta` carries the
   protocol version, client info and capabilities under the `io.modelcontextprotocol/` keys.
   A server that answers discover with an error (method not found, unsupported version) or
   lists no modern revision is spoken to with the handshake instead. Tool list changes are
   delivered to a `subscriptions/listen` request the client keeps open.
5. `LineSplitter` frames stdio: messages are newline-delimited UTF-8 JSON; a line longer than
   `max_line_bytes` is a `WireError` (the transport then drops the server), so a server that
   never ends a line cannot make us buffer without bound.

Facts followed: the JSON-RPC 2.0 spec; MCP revisions 2025-06-18, 2025-11-25 (lifecycle,
cancellation, pagination, tools) and 2026-07-28 (`server/discover`, per-request `_meta`,
`resultType`), as implemented by the official SDK 2.3.0 this project tests against.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from oxydra.core.errors import WireError

HANDSHAKE_VERSIONS = ("2025-06-18", "2025-11-25")
LATEST_HANDSHAKE = "2025-11-25"
MODERN_VERSION = "2026-07-28"
META_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
_EXCERPT = 120

Era = Literal["handshake", "modern"]


class RpcError(msgspec.Struct, frozen=True, kw_only=True):
    """A JSON-RPC error object."""

    code: int
    message: str
    data: Any = None


class Response(msgspec.Struct, frozen=True, kw_only=True, tag="response"):
    """The result of one of our requests."""

    id: int | str
    result: dict[str, Any]


class ErrorResponse(msgspec.Struct, frozen=True, kw_only=True, tag="error"):
    """A JSON-RPC error answering one of our requests (`id` None when the peer lost it)."""

    id: int | str | None
    error: RpcError


class ServerRequest(msgspec.Struct, frozen=True, kw_only=True, tag="request"):
    """A request from the peer that we must answer (`ping`, `roots/list`...)."""

    id: int | str
    method: str
    params: dict[str, Any] = {}


class ServerNotification(msgspec.Struct, frozen=True, kw_only=True, tag="notification"):
    """A notification from the peer (`notifications/tools/list_changed`, progress...)."""

    method: str
    params: dict[str, Any] = {}


class Malformed(msgspec.Struct, frozen=True, kw_only=True, tag="malformed"):
    """Input that is not a JSON-RPC message; `excerpt` is its start, for the log."""

    reason: str
    excerpt: str


Event = Response | ErrorResponse | ServerRequest | ServerNotification | Malformed


class _Inbound(msgspec.Struct, kw_only=True):
    jsonrpc: Any = None
    id: Any = None
    method: Any = None
    params: Any = None
    result: Any = msgspec.UNSET
    error: Any = None


_ENCODER = msgspec.json.Encoder()
_ANY = msgspec.json.Decoder()


def decode_messages(data: bytes | str) -> list[Event]:
    """Turn one JSON text (an object or a batch array) into events; garbage is `Malformed`."""
    text = data.strip() if isinstance(data, bytes | str) else data
    if not text:
        return []
    try:
        value = _ANY.decode(text)
    except msgspec.DecodeError as exc:
        return [Malformed(reason=f"not JSON ({exc})", excerpt=_excerpt(text))]
    items = value if isinstance(value, list) else [value]
    return [_event(item, text) for item in items]


def _event(item: Any, raw: bytes | str) -> Event:
    if not isinstance(item, dict):
        return Malformed(reason="a JSON-RPC message must be an object", excerpt=_excerpt(raw))
    msg = msgspec.convert(item, _Inbound)
    if msg.jsonrpc != "2.0":
        return Malformed(reason="missing jsonrpc: '2.0'", excerpt=_excerpt(raw))
    params = msg.params if isinstance(msg.params, dict) else {}
    if isinstance(msg.method, str):
        if _valid_id(msg.id):
            return ServerRequest(id=msg.id, method=msg.method, params=params)
        return ServerNotification(method=msg.method, params=params)
    if msg.error is not None:
        return ErrorResponse(id=msg.id if _valid_id(msg.id) else None, error=_rpc_error(msg.error))
    if _valid_id(msg.id) and msg.result is not msgspec.UNSET:
        if not isinstance(msg.result, dict):
            return ErrorResponse(
                id=msg.id,
                error=RpcError(code=INVALID_REQUEST, message="result is not a JSON object"),
            )
        return Response(id=msg.id, result=msg.result)
    return Malformed(
        reason="neither a request, a notification nor a response", excerpt=_excerpt(raw)
    )


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _rpc_error(raw: Any) -> RpcError:
    if isinstance(raw, dict):
        code = raw.get("code")
        message = raw.get("message")
        return RpcError(
            code=code if isinstance(code, int) and not isinstance(code, bool) else -32603,
            message=str(message) if message is not None else "error without a message",
            data=raw.get("data"),
        )
    return RpcError(code=-32603, message=f"malformed error object: {str(raw)[:_EXCERPT]}")


def _excerpt(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text[:_EXCERPT] + ("..." if len(text) > _EXCERPT else "")


def encode(message: dict[str, Any]) -> bytes:
    """Serialize one JSON-RPC message (no framing)."""
    return _ENCODER.encode(message)


class LineSplitter:
    """Newline framing of the stdio transport: `feed(bytes) -> complete lines`.

    Args:
        max_line_bytes: the longest line accepted; beyond it `feed` raises WireError.
    """

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._max = max_line_bytes
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return every line they completed (without the newline, CR stripped)."""
        self._buffer += data
        lines: list[bytes] = []
        start = 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            lines.append(bytes(self._buffer[start:end]).rstrip(b"\r"))
            start = end + 1
        del self._buffer[:start]
        if len(self._buffer) > self._max or any(len(line) > self._max for line in lines):
            self._buffer.clear()
            raise WireError(f"a message line exceeds {self._max} bytes")
        return lines

    def feed_eof(self) -> list[bytes]:
        """The last line, when the stream ended without a newline."""
        rest, self._buffer = bytes(self._buffer).strip(), bytearray()
        return [rest] if rest else []


class ClientInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Who we are, as `initialize` and the modern `_meta` state it."""

    name: str = "oxydra"
    version: str = "0.3.0"


class McpClientProtocol:
    """Ids, era and message building for one client connection (see the module docstring).

    Args:
        client: our name and version.
        versions: the handshake revisions we accept from the server, oldest first.
    """

    def __init__(
        self, client: ClientInfo | None = None, *, versions: tuple[str, ...] = HANDSHAKE_VERSIONS
    ) -> None:
        self.client = client if client is not None else ClientInfo()
        self.versions = versions
        self.era: Era = "handshake"
        self.protocol_version: str | None = None
        self.server_info: dict[str, Any] = {}
        self.capabilities: dict[str, Any] = {}
        self.instructions: str | None = None
        self._next_id = 1

    def request(self, method: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]:
        """A new request: its id (for matching the answer) and its bytes."""
        ident = self._next_id
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": ident, "method": method}
        params = self._stamp(method, dict(params or {}))
        if params:
            message["params"] = params
        return ident, encode(message)

    def notify(self, method: str, params: dict[str, Any] | None = None) -> bytes:
        """A notification (no answer expected)."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params:
            message["params"] = params
        return encode(message)

    @staticmethod
    def respond(ident: int | str, result: dict[str, Any]) -> bytes:
        """Our answer to a peer request."""
        return encode({"jsonrpc": "2.0", "id": ident, "result": result})

    @staticmethod
    def respond_error(ident: int | str | None, code: int, message: str) -> bytes:
        """An error answer to a peer request."""
        return encode({"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}})

    def _stamp(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if self.era != "modern" and method != "server/discover":
            return params
        meta = dict(params.get("_meta") or {})
        meta[META_VERSION] = self.protocol_version or MODERN_VERSION
        meta[META_CLIENT_INFO] = msgspec.to_builtins(self.client)
        meta[META_CAPABILITIES] = {}
        return {**params, "_meta": meta}

    # -- handshake era -------------------------------------------------------------------

    def initialize(self) -> tuple[int, bytes]:
        """The `initialize` request offering our newest handshake revision."""
        params = {
            "protocolVersion": self.versions[-1],
            "capabilities": {},
            "clientInfo": msgspec.to_builtins(self.client),
        }
        return self.request("initialize", params)

    def accept_initialize(self, result: dict[str, Any]) -> bytes:
        """Check the server's `initialize` result; return `notifications/initialized`.

        Raises:
            WireError: the server chose a revision we do not speak.
        """
        version = result.get("protocolVersion")
        if version not in self.versions:
            raise WireError(
                f"server chose protocol version {version!r}; we speak {', '.join(self.versions)}"
            )
        self.era = "handshake"
        self.protocol_version = str(version)
        self._adopt(result)
        return self.notify("notifications/initialized")

    # -- stateless era -------------------------------------------------------------------

    def discover(self) -> tuple[int, bytes]:
        """The `server/discover` probe at 2026-07-28."""
        return self.request("server/discover", {})

    def accept_discover(self, result: dict[str, Any]) -> bool:
        """Adopt 2026-07-28 when the server lists it; False means: use the handshake."""
        supported = result.get("supportedVersions")
        if not isinstance(supported, list) or MODERN_VERSION not in supported:
            return False
        self.era = "modern"
        self.protocol_version = MODERN_VERSION
        self._adopt(result)
        meta = result.get("_meta")
        if isinstance(meta, dict):
            info = meta.get("io.modelcontextprotocol/serverInfo")
            self.server_info = info if isinstance(info, dict) else {}
        return True

    def _adopt(self, result: dict[str, Any]) -> None:
        caps = result.get("capabilities")
        self.capabilities = caps if isinstance(caps, dict) else {}
        info = result.get("serverInfo")
        self.server_info = info if isinstance(info, dict) else {}
        text = result.get("instructions")
        self.instructions = text if isinstance(text, str) else None

    @property
    def tools_list_changes(self) -> bool:
        """The server promised `notifications/tools/list_changed`."""
        tools = self.capabilities.get("tools")
        return isinstance(tools, dict) and bool(tools.get("listChanged"))


def cancelled(request_id: int | str, reason: str) -> bytes:
    """`notifications/cancelled` for one of our requests."""
    params = {"requestId": request_id, "reason": reason}
    return encode({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params})
