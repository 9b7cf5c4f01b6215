"""Our span vocabulary mapped onto the OpenTelemetry GenAI semantic conventions.

Call sites name spans in our own words (`turn`, `chat`, `tool.call`, ...) through
`core/log.span`; this module is the one place that knows the conventions' names, so a change
upstream (they are still "Development" status and moved repository once) touches one table.
The names are our own string constants on purpose: the `opentelemetry-semantic-conventions`
package marks every `gen_ai` constant deprecated (moved to semantic-conventions-genai).

Rules:

1. A span's exported name and kind come from `SPAN_KINDS`; unknown names pass through as
   `oxydra.<name>`, INTERNAL.
2. Attributes are the call site's attrs then its result dict, renamed through `RENAMES`;
   keys without a rename become `oxydra.<key>`. Keys starting with `_` are content and are
   dropped unless content capture is on (then scrubbed by the caller).
3. Values are str/bool/int/float or a tuple of at most 64 str; anything else is its `str()`.
   Strings longer than `max_chars` are cut and end with a visible marker, so a huge
   argument cannot bloat a span.
"""

from __future__ import annotations

from typing import Any, Literal

Kind = Literal["internal", "client", "server"]
Attr = str | bool | int | float | tuple[str, ...]

# span name -> (exported name template, kind); `{x}` is filled from the span's attributes
SPAN_KINDS: dict[str, tuple[str, Kind]] = {
    "turn": ("invoke_agent {agent}", "internal"),
    "chat": ("chat {model}", "client"),
    "provider.complete": ("chat {model}", "client"),
    "tool.call": ("execute_tool {tool}", "internal"),
    "memory.retrieve": ("search_memory {store}", "internal"),
    "summarise": ("oxydra.summarise {model}", "internal"),
    "schedule.run": ("oxydra.schedule.run {schedule}", "internal"),
    "channel.deliver": ("oxydra.channel.deliver {channel}", "internal"),
    "gateway.turn": ("oxydra.gateway.turn", "server"),
}

OPERATIONS = {
    "turn": "invoke_agent",
    "chat": "chat",
    "provider.complete": "chat",
    "tool.call": "execute_tool",
    "memory.retrieve": "search_memory",
    "summarise": "chat",
}

RENAMES: dict[str, str] = {
    "agent": "gen_ai.agent.name",
    "session": "gen_ai.conversation.id",
    "model": "gen_ai.request.model",
    "provider": "gen_ai.provider.name",
    "response_model": "gen_ai.response.model",
    "response_id": "gen_ai.response.id",
    "finish_reasons": "gen_ai.response.finish_reasons",
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "cache_read_tokens": "gen_ai.usage.cache_read.input_tokens",
    "reasoning_tokens": "gen_ai.usage.reasoning.output_tokens",
    "cost_usd": "gen_ai.usage.cost",
    "ttft_s": "gen_ai.response.time_to_first_chunk",
    "stream": "gen_ai.request.stream",
    "tool": "gen_ai.tool.name",
    "call_id": "gen_ai.tool.call.id",
    "error": "error.type",
    "_input": "gen_ai.input.messages",
    "_output": "gen_ai.output.messages",
    "_arguments": "gen_ai.tool.call.arguments",
    "_result": "gen_ai.tool.call.result",
}

# Our driver names -> `gen_ai.provider.name` well-known values.
PROVIDER_NAMES = {
    "openai": "openai",
    "openai_responses": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "google": "gcp.gemini",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral": "mistral_ai",
    "xai": "x_ai",
}

TRUNCATION_MARK = "…[truncated]"


def exported_name(name: str, attrs: dict[str, Any]) -> tuple[str, Kind]:
    """The conventions' span name and kind for one of our spans (rule 1)."""
    template, kind = SPAN_KINDS.get(name, (f"oxydra.{name}", "internal"))
    if "{" in template:
        key = template[template.index("{") + 1 : template.index("}")]
        template = template.replace("{" + key + "}", str(attrs.get(key, "")) or "unknown")
    return template, kind


def clip(value: Any, max_chars: int) -> str | bool | int | float:
    """An attribute value OpenTelemetry accepts, cut to `max_chars` (rule 3)."""
    if isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    if len(text) > max_chars:
        return text[: max(max_chars - len(TRUNCATION_MARK), 0)] + TRUNCATION_MARK
    return text


def attributes(
    name: str,
    attrs: dict[str, Any],
    result: dict[str, Any],
    *,
    max_chars: int,
    content: bool,
) -> dict[str, Attr]:
    """Exported attributes of a finished span (rule 2); content values must be pre-scrubbed."""
    out: dict[str, Attr] = {}
    operation = OPERATIONS.get(name)
    if operation is not None:
        out["gen_ai.operation.name"] = operation
    for source in (attrs, result):
        for key, value in source.items():
            if value is None or (key.startswith("_") and not content):
                continue
            if key == "provider":
                value = PROVIDER_NAMES.get(str(value), str(value))
            name = RENAMES.get(key, f"oxydra.{key.lstrip('_')}")
            if isinstance(value, list | tuple):  # a string array, as finish_reasons is
                out[name] = tuple(str(clip(v, max_chars)) for v in value[:64])
            else:
                out[name] = clip(value, max_chars)
    return out
