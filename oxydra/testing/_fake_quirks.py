"""How particular self-hosted servers answered, for the fake LLM to behave the same way.

Each behaviour was seen from a real server (llama.cpp's, through llama-cpp-python, with a
small GGUF model; vLLM's model list as documented) and is what a driver must cope with:

- `llamacpp`: answers `"content": null` beside tool calls with a 500; its JSON-schema grammar
  builder fails on validation keywords (`maxLength`, `pattern`...) with a 500; a streamed
  request with tools gets HTTP 200 and an empty body; `max_tokens` larger than its context
  window is refused; `GET /v1/models` lists one model (a file name) with `meta.n_ctx_train`.
- `vllm`: `GET /v1/models` lists the served model with `max_model_len`.
- `openai` (default): none of the above; `GET /v1/models` is a 404 unless a route is added.

No server here checks `Authorization`: they run without a key.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

ServerKind = Literal["openai", "llamacpp", "vllm"]

# Keywords llama.cpp's grammar builder was seen to reject (it supports only a subset).
GRAMMAR_REJECTS = frozenset(
    {"maxLength", "minLength", "pattern", "format", "minimum", "maximum", "multipleOf"}
)
LLAMACPP_MODEL_FILE = "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"
_encode = msgspec.json.encode


def _error(status: int, message: str) -> tuple[int, bytes]:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return status, _encode({"error": {"code": status, "message": message, "type": kind}})


class ServerQuirks(msgspec.Struct, frozen=True, kw_only=True):
    """The behaviour of one kind of server (see the module docstring).

    Attributes:
        kind: which server to imitate.
        context_window: the window the server reports and enforces.
    """

    kind: ServerKind = "openai"
    context_window: int = 4096

    def models(self, served: str) -> bytes | None:
        """The body of `GET /v1/models`, or None for a 404."""
        if self.kind == "llamacpp":
            meta = {"n_ctx_train": self.context_window, "n_vocab": 151936, "n_params": 494032768}
            model = {"id": LLAMACPP_MODEL_FILE, "object": "model", "owned_by": "llamacpp"}
            return _encode({"object": "list", "data": [{**model, "meta": meta}]})
        if self.kind == "vllm":
            model = {"id": served, "object": "model", "owned_by": "vllm"}
            return _encode({"object": "list", "data": [{**model, "max_model_len": 8192}]})
        return None

    def refusal(self, body: dict[str, Any], streaming: bool) -> tuple[int, bytes] | None:
        """The error status and body this server answers `body` with, or None to answer it.

        `(200, b"")` is the empty stream.
        """
        if self.kind != "llamacpp":
            return None
        for message in body.get("messages", []):
            if message.get("role") == "assistant" and message.get("content", "") is None:
                return _error(500, "Failed to parse messages: content is null")
        for tool in body.get("tools", []):
            bad = _rejected_keywords(tool.get("function", {}).get("parameters", {}))
            if bad:
                return _error(500, f"JSON schema conversion failed: unsupported keyword {bad}")
        limit = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        if limit > self.context_window:
            return _error(
                400,
                f"Requested tokens ({limit}) exceed context window of {self.context_window}",
            )
        if streaming and body.get("tools"):
            return 200, b""
        return None


def _rejected_keywords(schema: Any, depth: int = 0) -> str | None:
    if depth > 32:
        return None
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in GRAMMAR_REJECTS and not isinstance(value, dict):
                return key
            found = _rejected_keywords(value, depth + 1)
            if found:
                return found
    elif isinstance(schema, list):
        for value in schema:
            found = _rejected_keywords(value, depth + 1)
            if found:
                return found
    return None
