"""The model-facing memory tools."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from oxydra.core import FunctionDecl, ToolArgumentsError, ToolError
from oxydra.memory import Memory
from oxydra.memory.tools import (
    MEMORY_TOOLS,
    memory_delete,
    memory_save,
    memory_search,
    memory_update,
)


@pytest.fixture
async def memory(db_path: Path) -> AsyncIterator[Memory]:
    opened = await Memory.open(db_path)
    await opened.create_session("conv-a", user_id="alice")
    yield opened
    await opened.close()


async def _save(memory: Memory, user: str, content: str, **params: Any) -> str:
    output = await memory_save(memory.retrieval, user, None, content=content, **params)
    return str(json.loads(output)["note_id"])


class TestMemoryTools:
    async def test_save_then_search_returns_upstream_fields(self, memory: Memory) -> None:
        note_id = await _save(memory, "alice", "Allergic to peanuts", tags=["Health"])
        output = await memory_search(memory.retrieval, "alice", "conv-a", query="peanut allergy")
        results = json.loads(output)
        assert results[0]["note_id"] == note_id
        assert set(results[0]) == {
            "note_id", "text", "score", "source", "tags", "created_at", "updated_at",
        }  # fmt: skip
        assert results[0]["tags"] == ["health"] and results[0]["source"] == "memory_save"

    async def test_search_is_scoped_to_the_calling_user(self, memory: Memory) -> None:
        await _save(memory, "alice", "Alice's door code is 4711")
        output = await memory_search(memory.retrieval, "bob", None, query="door code 4711")
        assert json.loads(output) == []

    async def test_conversation_is_searched_only_when_asked(self, memory: Memory) -> None:
        from oxydra.core import Message

        await memory.append_event("conv-a", Message(role="user", content="my flight is LH400"))
        without = await memory_search(memory.retrieval, "alice", "conv-a", query="LH400 flight")
        assert json.loads(without) == []
        with_conv = await memory_search(
            memory.retrieval, "alice", "conv-a", query="LH400 flight", include_conversation=True
        )
        (hit,) = json.loads(with_conv)
        assert (hit["note_id"], hit["source"]) == ("", "conversation")

    async def test_a_long_note_appears_once_in_results(self, memory: Memory) -> None:
        await _save(memory, "alice", " ".join(["gardening tomatoes basil"] * 80))
        output = await memory_search(memory.retrieval, "alice", None, query="tomatoes basil")
        assert len(json.loads(output)) == 1

    async def test_update_and_delete(self, memory: Memory) -> None:
        note_id = await _save(memory, "alice", "Lives in Berlin")
        updated = await memory_update(
            memory.retrieval, "alice", None, note_id=note_id, content="Lives in Hamburg"
        )
        assert json.loads(updated)["note_id"] == note_id
        deleted = await memory_delete(memory.retrieval, "alice", None, note_id=note_id)
        assert json.loads(deleted)["deleted"] is True

    @pytest.mark.parametrize("tool", [memory_update, memory_delete])
    async def test_unknown_or_foreign_note_is_a_tool_error(self, memory: Memory, tool: Any) -> None:
        note_id = await _save(memory, "alice", "Alice's note")
        params = {"note_id": note_id}
        if tool is memory_update:
            params["content"] = "hijack"
        with pytest.raises(ToolError, match="not found"):
            await tool(memory.retrieval, "bob", None, **params)

    @pytest.mark.parametrize(
        "params", [{"query": ""}, {"query": "x", "top_k": 0}, {"query": "x", "top_k": 21}]
    )
    async def test_bad_search_arguments_are_argument_errors(
        self, memory: Memory, params: dict[str, Any]
    ) -> None:
        with pytest.raises(ToolArgumentsError):
            await memory_search(memory.retrieval, "alice", None, **params)

    async def test_too_many_tags_are_an_argument_error(self, memory: Memory) -> None:
        with pytest.raises(ToolArgumentsError):
            await _save(memory, "alice", "x", tags=[f"t{i}" for i in range(17)])


class TestToolSpecs:
    def test_names_match_upstream(self) -> None:
        assert [t.name for t in MEMORY_TOOLS] == [
            "memory_search", "memory_save", "memory_update", "memory_delete",
        ]  # fmt: skip

    @pytest.mark.parametrize("spec", MEMORY_TOOLS, ids=lambda s: s.name)
    def test_schemas_are_valid_json_schema_objects(self, spec: Any) -> None:
        jsonschema.Draft202012Validator.check_schema(spec.parameters)
        assert spec.parameters["type"] == "object"
        assert isinstance(spec.decl, FunctionDecl) and spec.decl.name == spec.name

    def test_only_search_and_read_are_read_only(self) -> None:
        assert {t.name for t in MEMORY_TOOLS if t.read_only} == {"memory_search"}

    def test_search_schema_bounds_match_the_function(self) -> None:
        schema = MEMORY_TOOLS[0].parameters
        validator = jsonschema.Draft202012Validator(schema)
        assert validator.is_valid({"query": "x", "top_k": 20, "tags": ["a"]})
        assert not validator.is_valid({"query": "x", "top_k": 21})
        assert not validator.is_valid({"top_k": 3})
