"""Rebuild complete tool calls from streamed fragments.

Every provider streams a tool call as pieces: an id and a name once, then the JSON arguments
split at arbitrary points. The translators turn those pieces into `ToolCallDelta`s that share
an `index`; this accumulator glues them back together and parses the arguments once, at the end.

Argument rules (the runtime turns an invalid call into feedback so the model can correct it):

1. empty or whitespace-only arguments mean `{}`;
2. a JSON object is the arguments;
3. several JSON objects back to back (`{..}{..}`, a habit of some models that meant two
   calls) fan out into separate calls with ids `<id>_<n>`;
4. anything else keeps the raw text in `ToolCall.invalid_arguments`.
"""

from __future__ import annotations

import json
from typing import Any

from oxydra.core.ids import new_request_id
from oxydra.core.log import get_logger
from oxydra.core.messages import ToolCall
from oxydra.core.stream import ToolCallDelta
from oxydra.wire._depth import nesting_exceeds

_log = get_logger(__name__)
_scanner = json.JSONDecoder()


class _Partial:
    __slots__ = ("args", "details", "id", "name")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.args: list[str] = []
        self.details: dict[str, Any] | None = None


class ToolCallAccumulator:
    """Collects `ToolCallDelta`s by index and yields finished `ToolCall`s in index order."""

    def __init__(self) -> None:
        self._calls: dict[int, _Partial] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, delta: ToolCallDelta) -> None:
        """Merge one fragment into the call with the same index."""
        call = self._calls.setdefault(delta.index, _Partial())
        if delta.id and not call.id:
            call.id = delta.id
        if delta.name:
            call.name = _merge_name(call.name, delta.name)
        if delta.arguments:
            call.args.append(delta.arguments)
        if delta.provider_details:
            call.details = {**(call.details or {}), **delta.provider_details}

    def finish(self) -> list[ToolCall]:
        """The complete calls, in index order; arguments parsed by the module's rules."""
        calls: list[ToolCall] = []
        for index in sorted(self._calls):
            calls.extend(self._build(index, self._calls[index]))
        return calls

    def _build(self, index: int, call: _Partial) -> list[ToolCall]:
        call_id = call.id or new_request_id(f"call_{index}")
        name = call.name or ""
        if not name:
            _log.warning("tool call without a name", extra={"oxy": {"index": index}})
        raw = "".join(call.args)
        parsed = parse_arguments(raw)
        if isinstance(parsed, str):
            _log.info("tool call arguments are not a JSON object", extra={"oxy": {"tool": name}})
            return [
                ToolCall(
                    id=call_id, name=name, invalid_arguments=raw, provider_details=call.details
                )
            ]
        if len(parsed) == 1:
            return [
                ToolCall(id=call_id, name=name, arguments=parsed[0], provider_details=call.details)
            ]
        return [
            ToolCall(id=f"{call_id}_{n}", name=name, arguments=args, provider_details=call.details)
            for n, args in enumerate(parsed)
        ]


def _merge_name(current: str | None, piece: str) -> str:
    """Some servers repeat the full name in every chunk, others stream it in pieces."""
    if current is None or current == piece:
        return piece
    return current + piece


def parse_arguments(raw: str) -> list[dict[str, Any]] | str:
    """Parse tool arguments: a list of argument objects, or the raw text when unusable.

    Returns one object for normal arguments, several for back-to-back objects (fan-out) and
    the input string itself when it is not made of JSON objects.
    """
    text = raw.strip()
    if not text:
        return [{}]
    if nesting_exceeds(text):  # the model's text: stdlib json would recurse into it
        return raw
    try:
        value = json.loads(text)
    except ValueError:
        return _split_objects(text) or raw
    return [value] if isinstance(value, dict) else raw


def _split_objects(text: str) -> list[dict[str, Any]] | None:
    objects: list[dict[str, Any]] = []
    pos = 0
    while pos < len(text):
        try:
            value, end = _scanner.raw_decode(text, pos)
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        objects.append(value)
        pos = end
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
    return objects if len(objects) > 1 else None
