"""JSON nesting depth: measured past strings, bounded before every tagged decoder recurses."""

from __future__ import annotations

import msgspec
import pytest

from oxydra.core.errors import WireError
from oxydra.wire import control, gateway, parse_arguments, shell
from oxydra.wire._common import decode, tool_output_object
from oxydra.wire._depth import MAX_JSON_DEPTH, json_depth, nesting_exceeds
from oxydra.wire._tagged import FrameError


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": "[[[{"}]}', 3),
        (r'["\"[[[", "\\", [[]]]', 3),
        ('["unterminated [[[[', 1),
        ("[" * 5000 + "]" * 5000, 5000),
        ("[[]]" * 1000, 2),
    ],
)
def test_depth_ignores_brackets_inside_strings(text: str, depth: int) -> None:
    assert json_depth(text) == depth
    assert json_depth(text.encode()) == depth


def test_the_bound_is_inclusive() -> None:
    at = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert not nesting_exceeds(at) and nesting_exceeds("[" + at + "]")


@pytest.mark.parametrize(
    "decode",
    [
        gateway.decode_client_frame,
        gateway.decode_server_frame,
        control.decode_control_request,
        control.decode_control_response,
        shell.decode_shell_request,
        shell.decode_shell_response,
    ],
)
def test_every_tagged_decoder_answers_a_deep_frame_with_frame_error(decode: object) -> None:
    deep = b'{"type": "x", "op": "x", "payload": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(FrameError, match=f"nests deeper than {MAX_JSON_DEPTH} levels"):
        decode(deep)  # type: ignore[operator]


DEEP = "[" * 100_000 + "]" * 100_000


def test_a_deep_tool_output_is_sent_as_text_not_decoded() -> None:
    assert tool_output_object('{"a": ' + DEEP + "}") == {"result": '{"a": ' + DEEP + "}"}


def test_deep_tool_arguments_from_the_model_stay_raw_text() -> None:
    raw = '{"a": ' + DEEP + "}"
    assert parse_arguments(raw) == raw


def test_a_deep_provider_body_is_a_wire_error() -> None:
    with pytest.raises(WireError, match="nests deeper"):
        decode(DEEP, msgspec.json.Decoder(), "response")


@pytest.mark.parametrize("text", ["[" * 256, "[" * 200 + "]" * 56, "[" * 129 + "1"])
def test_short_deep_text_is_still_a_wire_error(text: str) -> None:
    assert len(text) <= 2 * MAX_JSON_DEPTH and json_depth(text) > MAX_JSON_DEPTH
    with pytest.raises(WireError, match="malformed response"):
        decode(text, msgspec.json.Decoder(), "response")
