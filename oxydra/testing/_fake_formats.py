"""Provider-shaped payloads for the fake LLM, modelled on each provider's API reference.

Each format renders a `Reply` as a whole JSON answer or as a list of SSE events, and a `Fail`
as that provider's error envelope. The payloads carry the fields the real services send (ids,
`object`, `model`, indexes, `usage`, `sequence_number`...), not only those Oxydra reads.
"""

from __future__ import annotations

import itertools
from typing import Any

import msgspec

from oxydra.testing._fake_script import Call, Fail, Reply, Usage

_ids = itertools.count(1)
_encode = msgspec.json.encode


def new_id(prefix: str) -> str:
    """A predictable unique id (`prefix` + counter)."""
    return f"{prefix}{next(_ids):06d}"


def pieces(text: str, size: int) -> list[str]:
    """`text` cut into `size`-character pieces."""
    size = max(size, 1)
    return [text[i : i + size] for i in range(0, len(text), size)]


def arguments_text(call: Call) -> str:
    """A call's arguments as the JSON text the model would emit."""
    return call.arguments if isinstance(call.arguments, str) else _encode(call.arguments).decode()


def sse(data: Any, event: str | None = None, *, crlf: bool = False) -> bytes:
    """One SSE event: optional `event:` line, one `data:` line, blank line."""
    payload = data if isinstance(data, str) else _encode(data).decode()
    head = f"event: {event}\n" if event else ""
    text = f"{head}data: {payload}\n\n"
    return (text.replace("\n", "\r\n") if crlf else text).encode()


def call_ids(reply: Reply, prefix: str) -> list[str]:
    """The ids of a reply's calls (their own or fresh ones)."""
    return [c.id or new_id(prefix) for c in reply.tool_calls]


# ---- OpenAI Chat Completions ---------------------------------------------------------------


def _openai_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
        },
    }


class OpenAIChatFormat:
    """`/v1/chat/completions`."""

    def _finish(self, reply: Reply) -> str:
        return reply.finish or ("tool_calls" if reply.tool_calls else "stop")

    def whole(self, reply: Reply, model: str) -> dict[str, Any]:
        """A `chat.completion` object."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text or None,
            "refusal": None,
        }
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        if reply.tool_calls:
            ids = call_ids(reply, "call_")
            message["tool_calls"] = [
                {
                    "id": i,
                    "type": "function",
                    "function": {"name": c.name, "arguments": arguments_text(c)},
                }
                for i, c in zip(ids, reply.tool_calls, strict=True)
            ]
        body: dict[str, Any] = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self._finish(reply),
                }
            ],
            "system_fingerprint": "fp_fake",
        }
        if reply.usage:
            body["usage"] = _openai_usage(reply.usage)
        return body

    def stream(self, reply: Reply, model: str, request: dict[str, Any]) -> list[bytes]:
        """`chat.completion.chunk` events, the usage chunk when asked for, then `[DONE]`."""
        chunk_id = new_id("chatcmpl-")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return sse(
                {
                    "id": chunk_id,
                    "object": "chat.completion.chunk",
                    "created": 1_700_000_000,
                    "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [choice],
                }
            )

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"reasoning_content": p}) for p in pieces(reply.reasoning, reply.chunk)]
        events += [chunk({"content": p}) for p in pieces(reply.text, reply.chunk)]
        for index, (call_id, call) in enumerate(
            zip(call_ids(reply, "call_"), reply.tool_calls, strict=True)
        ):
            head = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            events.append(chunk({"tool_calls": [head]}))
            for piece in pieces(arguments_text(call), reply.args_chunk):
                events.append(
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                )
        events.append(chunk({}, self._finish(reply)))
        if reply.usage and (request.get("stream_options") or {}).get("include_usage"):
            events.append(
                sse(
                    {
                        "id": chunk_id,
                        "object": "chat.completion.chunk",
                        "created": 1_700_000_000,
                        "model": model,
                        "choices": [],
                        "usage": _openai_usage(reply.usage),
                    }
                )
            )
        events.append(sse("[DONE]"))
        return events

    def error(self, fail: Fail) -> dict[str, Any]:
        """OpenAI's error envelope."""
        codes = {
            400: "invalid_request_error",
            401: "invalid_api_key",
            404: "model_not_found",
            429: "rate_limit_exceeded",
            500: "server_error",
            503: "server_error",
        }
        code = fail.error_type or codes.get(fail.status, "server_error")
        kind = (
            "requests"
            if fail.status == 429
            else "invalid_request_error"
            if fail.status < 500
            else "server_error"
        )
        return {"error": {"message": fail.message, "type": kind, "param": None, "code": code}}


# ---- Anthropic Messages -----------------------------------------------------------------


class AnthropicFormat:
    """`/v1/messages`."""

    def _stop(self, reply: Reply) -> str:
        return reply.finish or ("tool_use" if reply.tool_calls else "end_turn")

    def _blocks(self, reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if reply.reasoning:
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": reply.reasoning,
                    "signature": reply.signature or "sig-fake",
                }
            )
        if reply.text:
            blocks.append({"type": "text", "text": reply.text})
        for call_id, call in zip(call_ids(reply, "toolu_"), reply.tool_calls, strict=True):
            args = call.arguments if isinstance(call.arguments, dict) else {}
            blocks.append({"type": "tool_use", "id": call_id, "name": call.name, "input": args})
        return blocks

    def whole(self, reply: Reply, model: str) -> dict[str, Any]:
        """A `message` object."""
        usage = reply.usage or Usage(prompt_tokens=0, completion_tokens=0)
        return {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": self._blocks(reply),
            "stop_reason": self._stop(reply),
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage.prompt_tokens - usage.cached_tokens,
                "cache_read_input_tokens": usage.cached_tokens,
                "cache_creation_input_tokens": 0,
                "output_tokens": usage.completion_tokens,
            },
        }

    def stream(self, reply: Reply, model: str, request: dict[str, Any]) -> list[bytes]:
        """message_start, ping, content blocks with deltas, message_delta, message_stop."""
        usage = reply.usage or Usage(prompt_tokens=0, completion_tokens=0)
        start = self.whole(Reply(usage=reply.usage), model)
        start.update(content=[], stop_reason=None)
        start["usage"]["output_tokens"] = 1
        events = [
            sse({"type": "message_start", "message": start}, "message_start"),
            sse({"type": "ping"}, "ping"),
        ]
        index = 0
        if reply.reasoning:
            events += self._block(
                index,
                {"type": "thinking", "thinking": ""},
                [
                    {"type": "thinking_delta", "thinking": p}
                    for p in pieces(reply.reasoning, reply.chunk)
                ]
                + [{"type": "signature_delta", "signature": reply.signature or "sig-fake"}],
            )
            index += 1
        if reply.text:
            events += self._block(
                index,
                {"type": "text", "text": ""},
                [{"type": "text_delta", "text": p} for p in pieces(reply.text, reply.chunk)],
            )
            index += 1
        for call_id, call in zip(call_ids(reply, "toolu_"), reply.tool_calls, strict=True):
            deltas = [
                {"type": "input_json_delta", "partial_json": p}
                for p in pieces(arguments_text(call), reply.args_chunk)
            ]
            events += self._block(
                index, {"type": "tool_use", "id": call_id, "name": call.name, "input": {}}, deltas
            )
            index += 1
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop(reply), "stop_sequence": None},
            "usage": {"output_tokens": usage.completion_tokens},
        }
        events += [sse(delta, "message_delta"), sse({"type": "message_stop"}, "message_stop")]
        return events

    def _block(
        self, index: int, start: dict[str, Any], deltas: list[dict[str, Any]]
    ) -> list[bytes]:
        events = [
            sse(
                {"type": "content_block_start", "index": index, "content_block": start},
                "content_block_start",
            )
        ]
        events += [
            sse({"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta")
            for d in deltas
        ]
        events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        return events

    def error(self, fail: Fail) -> dict[str, Any]:
        """Anthropic's error envelope."""
        types = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            413: "request_too_large",
            429: "rate_limit_error",
            500: "api_error",
            529: "overloaded_error",
        }
        kind = fail.error_type or types.get(fail.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": fail.message}}


# ---- Gemini -----------------------------------------------------------------------------


def _gemini_usage(usage: Usage) -> dict[str, Any]:
    out = {
        "promptTokenCount": usage.prompt_tokens,
        "candidatesTokenCount": usage.completion_tokens,
        "totalTokenCount": usage.prompt_tokens + usage.completion_tokens + usage.reasoning_tokens,
    }
    if usage.reasoning_tokens:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_tokens:
        out["cachedContentTokenCount"] = usage.cached_tokens
    return out


class GeminiFormat:
    """`/v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`."""

    def _call_parts(self, reply: Reply) -> list[dict[str, Any]]:
        parts = []
        for call in reply.tool_calls:
            function: dict[str, Any] = {
                "name": call.name,
                "args": call.arguments if isinstance(call.arguments, dict) else {},
            }
            if call.id:
                function["id"] = call.id
            part: dict[str, Any] = {"functionCall": function}
            if call.thought_signature:
                part["thoughtSignature"] = call.thought_signature
            parts.append(part)
        return parts

    def _chunk(
        self,
        parts: list[dict[str, Any]],
        model: str,
        response_id: str,
        finish: str | None = None,
        usage: Usage | None = None,
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        body: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": model,
            "responseId": response_id,
        }
        if usage:
            body["usageMetadata"] = _gemini_usage(usage)
        return body

    def whole(self, reply: Reply, model: str) -> dict[str, Any]:
        """A `GenerateContentResponse`."""
        parts: list[dict[str, Any]] = []
        if reply.reasoning:
            parts.append({"text": reply.reasoning, "thought": True})
        if reply.text:
            parts.append({"text": reply.text})
        parts += self._call_parts(reply)
        return self._chunk(parts, model, new_id("resp-"), reply.finish or "STOP", reply.usage)

    def stream(self, reply: Reply, model: str, request: dict[str, Any]) -> list[bytes]:
        """One whole response object per event (CRLF-separated, as Google sends them)."""
        rid = new_id("resp-")
        chunks = [
            self._chunk([{"text": p, "thought": True}], model, rid)
            for p in pieces(reply.reasoning, reply.chunk)
        ]
        chunks += [self._chunk([{"text": p}], model, rid) for p in pieces(reply.text, reply.chunk)]
        chunks += [self._chunk([part], model, rid) for part in self._call_parts(reply)]
        last = self._chunk([{"text": ""}], model, rid, reply.finish or "STOP", reply.usage)
        return [sse(c, crlf=True) for c in [*chunks, last]]

    def error(self, fail: Fail) -> dict[str, Any]:
        """Google's error envelope."""
        words = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
        }
        status = fail.error_type or words.get(fail.status, "INTERNAL")
        return {"error": {"code": fail.status, "message": fail.message, "status": status}}


# ---- OpenAI Responses --------------------------------------------------------------------


class ResponsesFormat:
    """`/v1/responses`."""

    def _output(self, reply: Reply, ids: list[str]) -> list[dict[str, Any]]:
        output: list[dict[str, Any]] = []
        if reply.reasoning:
            output.append(
                {
                    "type": "reasoning",
                    "id": new_id("rs_"),
                    "summary": [{"type": "summary_text", "text": reply.reasoning}],
                }
            )
        if reply.text:
            output.append(
                {
                    "type": "message",
                    "id": new_id("msg_"),
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
                }
            )
        for call_id, call in zip(ids, reply.tool_calls, strict=True):
            output.append(
                {
                    "type": "function_call",
                    "id": new_id("fc_"),
                    "call_id": call_id,
                    "name": call.name,
                    "arguments": arguments_text(call),
                    "status": "completed",
                }
            )
        return output

    def _response(
        self, reply: Reply, model: str, rid: str, output: list[dict[str, Any]], status: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": rid,
            "object": "response",
            "created_at": 1_700_000_000,
            "status": status,
            "model": model,
            "output": output,
            "error": None,
            "incomplete_details": None,
        }
        if reply.finish:
            body.update(status="incomplete", incomplete_details={"reason": reply.finish})
        if reply.usage and status != "in_progress":
            u = reply.usage
            body["usage"] = {
                "input_tokens": u.prompt_tokens,
                "input_tokens_details": {"cached_tokens": u.cached_tokens},
                "output_tokens": u.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
                "total_tokens": u.prompt_tokens + u.completion_tokens,
            }
        return body

    def whole(self, reply: Reply, model: str) -> dict[str, Any]:
        """A `response` object."""
        return self._response(
            reply,
            model,
            new_id("resp_"),
            self._output(reply, call_ids(reply, "call_")),
            "completed",
        )

    def stream(self, reply: Reply, model: str, request: dict[str, Any]) -> list[bytes]:
        """Typed events with `sequence_number`, ending with `response.completed`."""
        rid = new_id("resp_")
        output = self._output(reply, call_ids(reply, "call_"))
        seq = itertools.count()
        events: list[bytes] = []

        def emit(kind: str, **fields: Any) -> None:
            events.append(sse({"type": kind, "sequence_number": next(seq), **fields}, kind))

        emit("response.created", response=self._response(reply, model, rid, [], "in_progress"))
        emit("response.in_progress", response=self._response(reply, model, rid, [], "in_progress"))
        for index, item in enumerate(output):
            self._item_events(emit, index, item, reply)
        final = self._response(reply, model, rid, output, "completed")
        emit("response.incomplete" if reply.finish else "response.completed", response=final)
        return events

    def _item_events(self, emit: Any, index: int, item: dict[str, Any], reply: Reply) -> None:
        if item["type"] == "message":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            emit(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": []},
            )
            for piece in pieces(reply.text, reply.chunk):
                emit(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    delta=piece,
                )
            emit(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=reply.text,
            )
        elif item["type"] == "function_call":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "arguments": "", "status": "in_progress"},
            )
            for piece in pieces(item["arguments"], reply.args_chunk):
                emit(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=index,
                    delta=piece,
                )
            emit(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                arguments=item["arguments"],
            )
        else:
            emit("response.output_item.added", output_index=index, item={**item, "summary": []})
            for piece in pieces(reply.reasoning, reply.chunk):
                emit(
                    "response.reasoning_summary_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    delta=piece,
                )
        emit("response.output_item.done", output_index=index, item=item)

    def error(self, fail: Fail) -> dict[str, Any]:
        """OpenAI's error envelope."""
        return OpenAIChatFormat().error(fail)


FORMATS: dict[str, OpenAIChatFormat | AnthropicFormat | GeminiFormat | ResponsesFormat] = {
    "openai": OpenAIChatFormat(),
    "anthropic": AnthropicFormat(),
    "gemini": GeminiFormat(),
    "openai_responses": ResponsesFormat(),
}


def format_for(path: str) -> tuple[str, bool | None] | None:
    """`(format, stream)` for a request path; stream None when the body decides."""
    if path.endswith("/chat/completions"):
        return "openai", None
    if path.endswith("/messages"):
        return "anthropic", None
    if path.endswith("/responses"):
        return "openai_responses", None
    if path.endswith(":streamGenerateContent"):
        return "gemini", True
    if path.endswith(":generateContent"):
        return "gemini", False
    return None
