"""Wire: sans-I/O codecs. Bytes in, typed events out; no sockets, threads or clocks.

Provider formats (`openai_chat`, `anthropic`, `gemini`, `responses`) are modules with a profile
Struct, a pure request builder, a non-streaming parser and a stream translator; they are used
through their module, e.g. `oxydra.wire.anthropic.build_request`.
"""

from oxydra.wire._common import (
    ErrorInfo,
    StreamTranslator,
    WireRequest,
    error_for_status,
    is_context_too_long,
    parse_error_body,
)
from oxydra.wire._depth import MAX_JSON_DEPTH, json_depth, nesting_exceeds
from oxydra.wire.assemble import ResponseAssembler
from oxydra.wire.sse import SSEDecoder, SSEEvent
from oxydra.wire.toolcalls import ToolCallAccumulator, parse_arguments

__all__ = [
    "ErrorInfo",
    "MAX_JSON_DEPTH",
    "ResponseAssembler",
    "SSEDecoder",
    "SSEEvent",
    "StreamTranslator",
    "ToolCallAccumulator",
    "WireRequest",
    "error_for_status",
    "is_context_too_long",
    "json_depth",
    "nesting_exceeds",
    "parse_arguments",
    "parse_error_body",
]
