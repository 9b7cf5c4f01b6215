"""@tool: schemas from signatures (checked as JSON Schema 2020-12) and argument validation."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

import jsonschema
import msgspec
import pytest

from oxydra.config.schema import AgentConfig
from oxydra.core.errors import ToolArgumentsError
from oxydra.tools import (
    ToolDefinitionError,
    ToolExecutionContext,
    check_schema_limits,
    default_tools,
    parse_docstring,
    tool,
    transform_schema,
)

VALIDATOR = jsonschema.Draft202012Validator


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(msgspec.Struct):
    x: int
    y: int = 0


class Node(msgspec.Struct):
    name: str
    children: list[Node] = []


@tool(timeout=3)
async def everything(
    ctx: ToolExecutionContext,
    text: str,
    count: Annotated[int, msgspec.Meta(ge=1, le=10)] = 5,
    ratio: float = 0.5,
    flag: bool = False,
    tags: list[str] | None = None,
    mode: Literal["fast", "slow"] = "fast",
    color: Color = Color.RED,
    point: Point | None = None,
    label: Annotated[str, msgspec.Meta(description="Shown in the UI.")] = "x",
) -> dict[str, Any]:
    """Echo the arguments back.

    A second paragraph of the description.

    Args:
        text: Any text.
        count: How many, 1-10.
        ratio: A fraction.
        flag: Whether to flag it.
        tags: Optional tags;
            spanning two lines.
        mode: Speed.
        color: A colour.
        point: A point.

    Returns:
        The arguments.
    """
    return {"text": text, "count": count, "ratio": ratio, "flag": flag, "tags": tags,
            "mode": mode, "color": color.value, "point": point, "label": label}  # fmt: skip


def all_builtin_tools() -> list[Any]:
    return default_tools(AgentConfig())


class TestSchemaFromSignature:
    def test_schema_is_valid_draft_2020_12_and_self_contained(self) -> None:
        params = everything.schema().parameters
        VALIDATOR.check_schema(params)
        assert "$ref" not in str(params) and "$defs" not in params and "title" not in params

    def test_types_map_to_json_schema(self) -> None:
        props = everything.schema().parameters["properties"]
        assert props["text"]["type"] == "string"
        assert (props["count"]["minimum"], props["count"]["maximum"]) == (1, 10)
        assert props["ratio"]["type"] == "number" and props["flag"]["type"] == "boolean"
        assert props["mode"]["enum"] == ["fast", "slow"]
        assert props["color"]["enum"] == ["blue", "red"]
        assert props["point"]["properties"]["x"]["type"] == "integer"
        assert props["tags"] == {"type": "array", "items": {"type": "string"}} | {
            "description": "Optional tags; spanning two lines."
        }  # optional: no `null` branch, leaving it out means the same
        parameters = everything.schema().parameters
        assert parameters["required"] == ["text"] and "additionalProperties" not in parameters

    def test_descriptions_come_from_the_docstring_and_meta(self) -> None:
        decl = everything.schema()
        props = decl.parameters["properties"]
        assert decl.description.startswith("Echo the arguments back.\n\nA second paragraph")
        assert props["tags"]["description"] == "Optional tags; spanning two lines."
        assert props["label"]["description"] == "Shown in the UI."

    def test_context_parameter_is_not_in_the_schema(self) -> None:
        assert "ctx" not in everything.schema().parameters["properties"]

    @pytest.mark.parametrize("built_in", all_builtin_tools(), ids=lambda t: t.name)
    def test_every_builtin_schema_is_valid_json_schema(self, built_in: Any) -> None:
        decl = built_in.schema()
        VALIDATOR.check_schema(decl.parameters)
        assert decl.parameters["type"] == "object" and decl.description
        assert check_schema_limits(decl.parameters) == []

    def test_builtin_names_and_parameters_match_the_rust_version(self) -> None:
        params = {t.name: set(t.schema().parameters["properties"]) for t in all_builtin_tools()}
        assert params == {
            "file_read": {"path"},
            "file_search": {"path", "query"},
            "file_list": {"path"},
            "file_write": {"path", "content"},
            "file_edit": {"path", "old_text", "new_text"},
            "file_delete": {"path"},
            "vault_copyto": {"source_path", "destination_path"},
            "web_fetch": {"url"},
            "web_search": {"query", "count", "freshness"},
            "scratchpad_read": set(),
            "scratchpad_write": {"items"},
            "scratchpad_clear": set(),
            "send_media": {"path", "media_type", "caption"},
        }


class TestValidation:
    async def test_arguments_are_converted_before_the_body_runs(
        self, ctx: ToolExecutionContext
    ) -> None:
        out = await everything.execute({"text": "hi", "count": "3", "point": {"x": 1}}, ctx)
        decoded = msgspec.json.decode(out)
        assert decoded["count"] == 3 and decoded["point"] == {"x": 1, "y": 0}

    async def test_null_for_an_argument_with_a_default_is_dropped(
        self, ctx: ToolExecutionContext
    ) -> None:
        out = await everything.execute({"text": "hi", "count": None, "tags": None}, ctx)
        assert msgspec.json.decode(out)["count"] == 5

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            ({}, "missing required field `text`"),
            ({"text": 1}, "at `text`: expected `str`, got `int`"),
            ({"text": "x", "count": 50}, "at `count`: expected `int` <= 10"),
            ({"text": "x", "mode": "medium"}, "at `mode`: invalid enum value 'medium'"),
            ({"text": "x", "point": {"x": "a"}}, "at `point.x`: expected `int`, got `str`"),
            ({"text": "x", "bogus": 1}, "unknown field `bogus`"),
        ],
    )
    async def test_validation_error_names_the_field_and_expectation(
        self, ctx: ToolExecutionContext, args: dict[str, Any], expected: str
    ) -> None:
        with pytest.raises(ToolArgumentsError) as caught:
            await everything.execute(args, ctx)
        assert expected in str(caught.value)
        assert "Parameters: text (string, required)" in str(caught.value)

    async def test_non_object_arguments_are_refused(self, ctx: ToolExecutionContext) -> None:
        with pytest.raises(ToolArgumentsError, match="JSON object"):
            await everything.execute(["x"], ctx)  # type: ignore[arg-type]


class TestSignatureProblems:
    def test_every_problem_is_listed_in_one_error(self) -> None:
        def bad(a, *rest: int, b: Node, c: int = "x") -> str:  # type: ignore[no-untyped-def,assignment]
            """Args:
            zz: not a parameter.
            """
            return ""

        with pytest.raises(ToolDefinitionError) as caught:
            tool(name="bad tool!")(bad)
        problems = "\n".join(caught.value.problems)
        for fragment in (
            "must match",
            "'async def'",
            "no description",
            "'a' has no type annotation",
            "*args",
            "'b' has no description",
            "'c': default 'x' does not fit",
            "'zz', which is not a parameter",
        ):
            assert fragment in problems

    def test_a_type_without_json_schema_is_named_with_the_other_problems(self) -> None:
        async def odd(z: list[complex], w: list[complex]) -> str:
            """Take numbers.

            Args:
                z: A complex number.
            """
            return ""

        async def alone(z: list[complex]) -> str:
            """Take a number.

            Args:
                z: A complex number.
            """
            return ""

        with pytest.raises(ToolDefinitionError) as caught:
            tool(odd)
        first, *types = caught.value.problems
        assert first.startswith("'w' has no description")
        assert [p.split(":")[0] for p in types] == ["'z'", "'w'"]
        assert all("has no JSON Schema" in p for p in types)
        with pytest.raises(ToolDefinitionError) as caught:
            tool(alone)  # the only problem: found when the whole schema is built
        assert [p.split(":")[0] for p in caught.value.problems] == ["'z'"]

    def test_recursive_structs_are_refused(self) -> None:
        async def tree(root: Node) -> str:
            """Walk a tree.

            Args:
                root: The root.
            """
            return ""

        with pytest.raises(ToolDefinitionError, match="recursive"):
            tool(tree)


class TestTransforms:
    def test_openai_strict_requires_everything_and_makes_optionals_nullable(self) -> None:
        schema = transform_schema(everything.schema().parameters, "openai_strict")
        VALIDATOR.check_schema(schema)
        assert set(schema["required"]) == set(schema["properties"])
        assert schema["properties"]["count"]["type"] == ["integer", "null"]
        assert "default" not in str(schema)
        assert schema["properties"]["point"]["additionalProperties"] is False

    def test_gemini_strips_additional_properties_and_defaults(self) -> None:
        original = everything.schema().parameters
        schema = transform_schema(original, "gemini")
        VALIDATOR.check_schema(schema)
        assert "additionalProperties" not in str(schema) and "'default'" not in str(schema)
        assert original["properties"]["count"]["default"] == 5

    def test_limits_flag_oversized_and_deep_schemas(self) -> None:
        deep: dict[str, Any] = {"type": "object"}
        for _ in range(40):
            deep = {"type": "object", "properties": {"a": deep}}
        assert check_schema_limits(deep)


def test_docstring_sections_are_parsed() -> None:
    summary, args = parse_docstring(
        """Do it.

        Args:
            a (int): First
                continued.
            b: Second.

        Raises:
            ValueError: never.
        """
    )
    assert summary == "Do it."
    assert args == {"a": "First continued.", "b": "Second."}
