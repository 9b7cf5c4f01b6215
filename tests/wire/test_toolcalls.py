"""Tool-call accumulator: fragments by index, argument parsing rules."""

from __future__ import annotations

import pytest

from oxydra.core.stream import ToolCallDelta
from oxydra.wire.toolcalls import ToolCallAccumulator, parse_arguments


def accumulate(*deltas: ToolCallDelta) -> ToolCallAccumulator:
    acc = ToolCallAccumulator()
    for delta in deltas:
        acc.add(delta)
    return acc


class TestAccumulator:
    def test_fragments_with_one_index_become_one_call(self) -> None:
        calls = accumulate(
            ToolCallDelta(index=0, id="c1", name="search"),
            ToolCallDelta(index=0, arguments='{"q": "py'),
            ToolCallDelta(index=0, arguments='thon"}'),
        ).finish()
        assert [(c.id, c.name, c.arguments) for c in calls] == [("c1", "search", {"q": "python"})]

    def test_interleaved_indexes_are_kept_apart_and_ordered(self) -> None:
        calls = accumulate(
            ToolCallDelta(index=1, id="b", name="second", arguments='{"n":'),
            ToolCallDelta(index=0, id="a", name="first", arguments="{}"),
            ToolCallDelta(index=1, arguments="2}"),
        ).finish()
        assert [(c.name, c.arguments) for c in calls] == [("first", {}), ("second", {"n": 2})]

    @pytest.mark.parametrize("pieces", [["get_weather", "get_weather"], ["get_", "weather"]])
    def test_names_repeated_or_streamed_in_pieces_are_merged(self, pieces: list[str]) -> None:
        acc = accumulate(*(ToolCallDelta(index=0, id="x", name=p) for p in pieces))
        assert acc.finish()[0].name == "get_weather"

    def test_missing_id_gets_a_generated_one(self) -> None:
        call = accumulate(ToolCallDelta(index=3, name="f")).finish()[0]
        assert call.id.startswith("call_3")

    def test_arguments_that_never_become_json_are_kept_raw(self) -> None:
        call = accumulate(ToolCallDelta(index=0, id="x", name="f", arguments='{"a": ')).finish()[0]
        assert call.invalid_arguments == '{"a": '
        assert call.arguments == {}

    def test_back_to_back_objects_fan_out_into_calls(self) -> None:
        calls = accumulate(
            ToolCallDelta(index=0, id="x", name="f", arguments='{"a":1} {"a":2}')
        ).finish()
        assert [(c.id, c.arguments) for c in calls] == [("x_0", {"a": 1}), ("x_1", {"a": 2})]

    def test_provider_details_are_merged_onto_the_call(self) -> None:
        calls = accumulate(
            ToolCallDelta(index=0, id="x", name="f", provider_details={"thought_signature": "s"}),
        ).finish()
        assert calls[0].provider_details == {"thought_signature": "s"}


class TestParseArguments:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("", [{}]),
            ("   \n", [{}]),
            ('{"a": [1, 2]}', [{"a": [1, 2]}]),
            ('{"a":1}{"b":2}', [{"a": 1}, {"b": 2}]),
            ("[1, 2]", "[1, 2]"),
            ('"text"', '"text"'),
            ("not json", "not json"),
            ('{"a":1} [2]', '{"a":1} [2]'),
        ],
    )
    def test_parse_rules(self, raw: str, expected: object) -> None:
        assert parse_arguments(raw) == expected
