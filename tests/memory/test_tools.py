"""The model-facing memory tools, driven through a real `ToolRegistry` as the runtime does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from oxydra.core import Message
from oxydra.core.tiers import SafetyTier
from oxydra.memory import Memory
from oxydra.memory.tools import memory_tools
from oxydra.security import Workspace
from oxydra.tools import LocalFileBackend, ToolExecutionContext, ToolRegistry


@pytest.fixture
async def memory(db_path: Path) -> AsyncIterator[Memory]:
    opened = await Memory.open(db_path)
    await opened.create_session("conv-a", user_id="alice")
    yield opened
    await opened.close()


@pytest.fixture
def registry(memory: Memory) -> ToolRegistry:
    reg = ToolRegistry()
    reg.register_all(memory_tools(memory))
    return reg


def ctx(tmp_path: Path, user: str = "alice", session: str = "conv-a") -> ToolExecutionContext:
    for sub in ("shared", "tmp", "vault"):
        (tmp_path / sub).mkdir(exist_ok=True)
    backend = LocalFileBackend(Workspace.for_user(tmp_path))
    return ToolExecutionContext(user_id=user, session_id=session, workspace=backend)


class Caller:
    def __init__(self, registry: ToolRegistry, tmp_path: Path) -> None:
        self.registry, self.tmp_path = registry, tmp_path

    async def __call__(self, name: str, user: str = "alice", **args: Any) -> Any:
        result = await self.registry.execute(name, args, ctx(self.tmp_path, user))
        return json.loads(result.text) if result.ok else result

    async def save(self, content: str, user: str = "alice", **args: Any) -> str:
        return str((await self("memory_save", user, content=content, **args))["note_id"])


@pytest.fixture
def call(registry: ToolRegistry, tmp_path: Path) -> Caller:
    return Caller(registry, tmp_path)


class TestMemoryTools:
    async def test_save_then_search_returns_upstream_fields(self, call: Caller) -> None:
        note_id = await call.save("Alice is allergic to peanuts", tags=["health"])
        results = await call("memory_search", query="peanut allergy")
        assert results[0]["note_id"] == note_id
        assert set(results[0]) == {
            "note_id", "text", "score", "source", "tags", "created_at", "updated_at",
        }  # fmt: skip
        assert results[0]["tags"] == ["health"] and results[0]["source"] == "memory_save"

    async def test_search_is_scoped_to_the_calling_user(self, call: Caller) -> None:
        await call.save("Alice's door code is 4711")
        assert await call("memory_search", "bob", query="door code 4711") == []

    async def test_conversation_is_searched_only_when_asked(
        self, call: Caller, memory: Memory
    ) -> None:
        await memory.append_events("conv-a", [Message(role="user", content="my flight is LH400")])
        assert await call("memory_search", query="LH400 flight") == []
        (hit,) = await call("memory_search", query="LH400 flight", include_conversation=True)
        assert (hit["note_id"], hit["source"]) == ("", "conversation")

    async def test_a_long_note_appears_once_in_results(self, call: Caller) -> None:
        await call.save(" ".join(["gardening tomatoes basil"] * 80))
        assert len(await call("memory_search", query="tomatoes basil")) == 1

    async def test_update_and_delete(self, call: Caller) -> None:
        note_id = await call.save("Lives in Berlin")
        updated = await call("memory_update", note_id=note_id, content="Lives in Hamburg")
        assert updated["note_id"] == note_id
        assert (await call("memory_delete", note_id=note_id))["deleted"] is True

    @pytest.mark.parametrize("name", ["memory_update", "memory_delete"])
    async def test_unknown_or_foreign_note_is_a_tool_error(self, call: Caller, name: str) -> None:
        note_id = await call.save("Alice's note")
        params = {"note_id": note_id} | ({"content": "hijack"} if name == "memory_update" else {})
        result = await call(name, "bob", **params)
        assert result.error_kind == "failed" and "not found" in result.text
        assert (await call("memory_search", query="Alice's note"))[0]["text"] == "Alice's note"

    @pytest.mark.parametrize(
        "params",
        [{"query": ""}, {"query": "   "}, {"query": "x", "top_k": 0}, {"query": "x", "top_k": 21}],
    )
    async def test_bad_search_arguments_are_argument_errors(
        self, call: Caller, params: dict[str, Any]
    ) -> None:
        assert (await call("memory_search", **params)).error_kind == "invalid_arguments"

    async def test_too_many_or_too_long_tags_are_argument_errors(self, call: Caller) -> None:
        many = await call("memory_save", content="x", tags=[f"t{i}" for i in range(17)])
        long = await call("memory_save", content="x", tags=["x" * 65])
        assert many.error_kind == long.error_kind == "invalid_arguments"


class TestDeclarations:
    def test_names_match_upstream(self, registry: ToolRegistry) -> None:
        assert sorted(registry.names) == [
            "memory_delete", "memory_save", "memory_search", "memory_update",
        ]  # fmt: skip

    def test_schemas_are_valid_json_schema_objects(self, registry: ToolRegistry) -> None:
        for decl in registry.schemas():
            jsonschema.Draft202012Validator.check_schema(decl.parameters)
            assert decl.parameters["type"] == "object" and decl.description

    def test_only_search_is_read_only(self, memory: Memory) -> None:
        tiers = {t.name: t.safety_tier for t in memory_tools(memory)}
        assert [n for n, t in tiers.items() if t == SafetyTier.READ_ONLY] == ["memory_search"]

    def test_search_schema_bounds_match_the_function(self, registry: ToolRegistry) -> None:
        (decl,) = [d for d in registry.schemas() if d.name == "memory_search"]
        validator = jsonschema.Draft202012Validator(decl.parameters)
        assert validator.is_valid({"query": "x", "top_k": 20, "tags": ["a"]})
        assert not validator.is_valid({"query": "x", "top_k": 21})
        assert not validator.is_valid({"top_k": 3})
