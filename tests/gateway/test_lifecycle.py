"""Session lifecycle over the gateway protocol: new, list, switch, rename, archive, delete,
export, and the audit log of each step; another person's session is never reachable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from oxydra.config.schema import GatewayConfig, RuntimeConfig
from oxydra.core.stream import Text
from oxydra.gateway import SESSION_SCHEMA
from oxydra.gateway._store import MemorySessionRecords
from oxydra.gateway._table import SessionRecord
from oxydra.gateway.core import GatewayCore
from oxydra.gateway.server import GatewayServer
from oxydra.memory import HashedEmbedder, Memory
from oxydra.runtime import MemoryConversations
from oxydra.runtime.loop import AgentRuntime
from oxydra.testing.mock_provider import MockProvider, reply
from oxydra.wire import gateway as g
from tests.gateway.support import client, recv, send, terminal, turn, until
from tests.runtime.support import FunctionTools

TOKENS = {"token-alice-0123456789": "alice", "token-bob-0123456789ab": "bob"}
ALICE, BOB = "token-alice-0123456789", "token-bob-0123456789ab"


class Stack:
    def __init__(self, provider: MockProvider, endpoint: str, core: GatewayCore, memory: Memory):
        self.provider, self.endpoint, self.core, self.memory = provider, endpoint, core, memory


@pytest.fixture(params=["sqlite", "postgres"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    """The gateway over either store: the lifecycle's SQL is shared by both."""
    provider = MockProvider([], item_delay=0.0)
    target: Any = tmp_path / "memory.db"
    if request.param == "postgres":
        from oxydra.memory._pg import PgDatabase

        target = PgDatabase(request.getfixturevalue("pg_url"))
    memory = await Memory.open(target, embedder=HashedEmbedder(), schemas=[SESSION_SCHEMA])
    runtime = AgentRuntime(
        provider=provider,
        tools=FunctionTools(),
        config=RuntimeConfig(),
        provider_id="mock",
        model="m",
        system_prompt="test",
        store=MemoryConversations(memory, index=True),
    )
    core = GatewayCore(runtime, MemorySessionRecords(memory), GatewayConfig(), data=memory)
    server = GatewayServer(core, TOKENS)
    host, port = await server.start("127.0.0.1", 0)
    yield Stack(provider, f"ws://{host}:{port}/ws", core, memory)
    await core.shutdown()
    await server.close()
    await memory.close()


async def ask(ws: Any, frame: Any) -> Any:
    await send(ws, frame)
    return await recv(ws)


async def test_every_lifecycle_verb_over_the_protocol(stack: Stack) -> None:
    stack.provider.steps += [reply("pelicans nest on the cliff"), reply("second answer")]
    alice, ack = await client(stack.endpoint, token=ALICE, user="alice")
    first = ack.session.session_id
    await send(alice, turn(first, "tell me about pelicans"))
    await until(alice, terminal)
    created = await ask(alice, g.CreateSession(request_id="n", display_name="plans\x1b[2J"))
    assert isinstance(created, g.SessionCreated) and created.display_name == "plans [2J"
    second = created.session.session_id
    await send(alice, turn(second, "another topic"))
    await until(alice, terminal)

    listing = await ask(alice, g.ListSessions(request_id="l"))
    rows = {s.session_id: s for s in listing.sessions}
    assert set(rows) == {first, second} and rows[first].turns == 1
    assert rows[second].display_name == "plans [2J"

    renamed = await ask(
        alice, g.RenameSession(request_id="r", session_id=first, display_name="birds")
    )
    assert isinstance(renamed, g.SessionUpdated) and renamed.session.display_name == "birds"
    archived = await ask(alice, g.ArchiveSession(request_id="a", session_id=first[:30]))
    assert isinstance(archived, g.SessionUpdated) and archived.session.archived
    listing = await ask(alice, g.ListSessions(request_id="l2"))
    assert [s.session_id for s in listing.sessions] == [second]
    listing = await ask(alice, g.ListSessions(request_id="l3", include_archived=True))
    assert {s.session_id for s in listing.sessions} == {first, second}

    exported = await ask(alice, g.ExportSession(request_id="e", session_id=first))
    assert isinstance(exported, g.SessionExport) and "# Session birds" in exported.content
    assert "tell me about pelicans" in exported.content and "cliff" in exported.content
    lines = await ask(alice, g.ExportSession(request_id="j", session_id=first, format="jsonl"))
    rows_out = [json.loads(line) for line in lines.content.splitlines()]
    assert [r["role"] for r in rows_out] == ["user", "assistant"]

    unarchived = await ask(alice, g.UnarchiveSession(request_id="u", session_id=first))
    assert isinstance(unarchived, g.SessionUpdated) and not unarchived.session.archived
    assert await stack.memory.search("pelicans", user_id="alice", mode="fts")
    deleted = await ask(alice, g.DeleteSession(request_id="d", session_id=first))
    assert isinstance(deleted, g.SessionDeleted) and deleted.deleted == [first]
    assert await stack.memory.recall(first) == []
    for mode in ("fts", "vector"):
        hits = await stack.memory.search("pelicans", user_id="alice", mode=mode)  # type: ignore[arg-type]
        assert first not in {h.session_id for h in hits}
    gone = await ask(alice, g.SwitchSession(request_id="s", session_id=first))
    assert isinstance(gone, g.ErrorFrame) and gone.code == "session_not_found"

    log = await stack.core.audit_log("alice")
    steps = [(e.action, e.session_id, e.old_session_id, e.channel) for e in reversed(log)]
    assert steps == [
        ("new", first, None, "tui"),
        ("new", second, first, "tui"),  # the rollover: old id -> new id
        ("rename", first, None, "tui"),
        ("archive", first, None, "tui"),
        ("export", first, None, "tui"),
        ("export", first, None, "tui"),
        ("unarchive", first, None, "tui"),
        ("delete", first, None, "tui"),
    ]


VERBS = [
    lambda sid: g.RenameSession(request_id="x", session_id=sid, display_name="mine now"),
    lambda sid: g.ArchiveSession(request_id="x", session_id=sid),
    lambda sid: g.DeleteSession(request_id="x", session_id=sid),
    lambda sid: g.ExportSession(request_id="x", session_id=sid),
    lambda sid: g.SwitchSession(request_id="x", session_id=sid),
]


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("how", ["exact", "prefix"])
async def test_another_persons_session_is_refused_exactly_like_a_missing_one(
    stack: Stack, verb: Any, how: str
) -> None:
    _, ack = await client(stack.endpoint, token=ALICE, user="alice", create_new_session=True)
    theirs = ack.session.session_id
    bob, _ = await client(stack.endpoint, token=BOB, user="bob")
    target = theirs if how == "exact" else theirs[:20]
    refused = await ask(bob, verb(target))
    missing = await ask(bob, verb("z" * len(target)))
    assert isinstance(refused, g.ErrorFrame) and refused.code == "session_not_found"
    assert refused.message.replace(target, "ID") == missing.message.replace("z" * len(target), "ID")
    record = await stack.core.store.get(theirs)
    assert record is not None and record.display_name is None and not record.archived


async def test_deleting_a_session_with_a_running_turn_cancels_it_first(stack: Stack) -> None:
    stack.provider.steps.append([Text(text=f"{i} ") for i in range(400)])
    stack.provider.item_delay = 0.02
    alice, ack = await client(stack.endpoint, token=ALICE, user="alice", create_new_session=True)
    sid = ack.session.session_id
    await send(alice, turn(sid, "a long answer please"))
    await until(alice, lambda f: isinstance(f, g.AssistantDelta))
    await send(alice, g.DeleteSession(request_id="d", session_id=sid))
    frames = await until(alice, lambda f: isinstance(f, g.SessionDeleted))
    kinds = [type(f).__name__ for f in frames if not isinstance(f, g.AssistantDelta)]
    assert kinds[-2:] == ["TurnCancelled", "SessionDeleted"]
    assert await stack.memory.recall(sid) == []
    refused = await ask(alice, turn(sid, "still there?"))
    assert isinstance(refused, g.ErrorFrame) and refused.code == "session_deleted"


async def test_sub_agent_sessions_are_listed_under_their_parent_and_deleted_with_it(
    stack: Stack,
) -> None:
    alice, ack = await client(stack.endpoint, token=ALICE, user="alice", create_new_session=True)
    parent = ack.session.session_id
    other = await ask(alice, g.CreateSession(request_id="o"))
    child = SessionRecord(
        session_id="subagent:" + parent + ":c1", user_id="alice", parent_session_id=parent,
        agent_name="researcher", channel_origin="subagent",
    )  # fmt: skip
    grandchild = SessionRecord(
        session_id="subagent:" + child.session_id + ":g1", user_id="alice",
        parent_session_id=child.session_id, agent_name="checker", channel_origin="subagent",
    )  # fmt: skip
    assert await stack.core.store.create_many([child, grandchild]) == {
        child.session_id,
        grandchild.session_id,
    }
    listing = await ask(alice, g.ListSessions(request_id="l", include_subagent_sessions=True))
    order = [s.session_id for s in listing.sessions]
    assert order == [
        other.session.session_id,
        parent,
        child.session_id,
        grandchild.session_id,
    ] or order == [parent, child.session_id, grandchild.session_id, other.session.session_id]
    plain = await ask(alice, g.ListSessions(request_id="l2"))
    assert {s.session_id for s in plain.sessions} == {parent, other.session.session_id}
    await send(alice, g.SwitchSession(request_id="s", session_id=other.session.session_id))
    await recv(alice)
    deleted = await ask(alice, g.DeleteSession(request_id="d", session_id=parent))
    assert deleted.deleted == [grandchild.session_id, child.session_id, parent]
    assert await stack.core.store.get(child.session_id) is None


async def test_retention_deletes_only_archived_sessions_idle_past_the_limit(stack: Stack) -> None:
    from oxydra.core.messages import Message

    book = stack.core.book
    old_archived = await book.new("alice", channel="tui", display_name="old")
    old_live = await book.new("alice", channel="tui")
    recent_archived = await book.new("alice", channel="tui")
    for record in (old_archived, old_live, recent_archived):
        await stack.memory.create_session(record.session_id, user_id="alice")
        await stack.memory.append_events(record.session_id, [Message(role="user", content="hi")])
    await book.archive("alice", old_archived.session_id, "tui")
    await book.archive("alice", recent_archived.session_id, "tui")

    def age(db: Any, session_id: str) -> None:
        with db.write() as conn:
            conn.execute(
                "UPDATE gateway_sessions SET last_active_at = '2020-01-01T00:00:00.000Z' "
                "WHERE session_id = ?",
                (session_id,),
            )

    for record in (old_archived, old_live):
        await stack.memory.call(age, record.session_id)
    assert await book.prune(30) == [old_archived.session_id]
    assert await stack.memory.recall(old_archived.session_id) == []
    assert await stack.core.store.get(old_live.session_id) is not None
    assert await stack.core.store.get(recent_archived.session_id) is not None
    last = (await book.audit_log("alice"))[0]
    assert (last.action, last.channel, last.session_id) == (
        "delete",
        "retention",
        old_archived.session_id,
    )
