"""A skill the model writes in a terminal (TUI) session is offered to the operator as an
approval frame showing the draft; a yes approves exactly that draft, a no leaves it a draft."""

from __future__ import annotations

import pytest

from oxydra.config.schema import GatewayConfig
from oxydra.gateway._store import MemorySessionRecords
from oxydra.gateway.core import GatewayCore
from oxydra.gateway.server import GatewayServer
from oxydra.testing.fake_llm import Reply
from oxydra.testing.taint_scenarios import calls, harness
from oxydra.tools.skills import Source, discover, read_approvals
from oxydra.tui.model import TuiState, apply_frame
from oxydra.wire import gateway as g
from tests.gateway.support import client, send, terminal, turn, until

TOKEN = "token-alice-0123456789"
BODY = "Sum up the week's notes in five bullets."


@pytest.mark.parametrize("approved", [True, False])
async def test_the_operator_approves_a_drafted_skill_from_the_tui(approved: bool) -> None:
    async with harness() as h:
        create = calls(
            "skill_create", name="weekly-report", description="Weekly report.", body=BODY
        )
        h.llm.add([create, Reply(text="Drafted.")])
        core = GatewayCore(h.runtime, MemorySessionRecords(h.services.memory), GatewayConfig())
        server = GatewayServer(core, {TOKEN: "alice"})
        host, port = await server.start("127.0.0.1", 0)
        try:
            ws, ack = await client(
                f"ws://{host}:{port}/ws", token=TOKEN, user="alice", create_new_session=True
            )
            await send(ws, turn(ack.session.session_id, "Remember how to do my weekly report."))
            asked = (await until(ws, lambda f: isinstance(f, g.ApprovalRequest)))[-1]
            assert asked.tool_name == "skill_approve"
            assert asked.arguments["name"] == "weekly-report"
            assert asked.arguments["body"] == BODY
            state = TuiState(user_id="alice")
            apply_frame(state, asked)
            shown = state.entries[-1].text
            assert "skill approval: weekly-report" in shown and BODY in shown
            assert asked.arguments["sha256"][:16] in shown
            answer = g.ApprovalResponse(
                request_id="a", approval_id=asked.approval_id, approved=approved
            )
            await send(ws, answer)
            await until(ws, terminal)
        finally:
            await core.shutdown()
            await server.close()
        result = h.llm.requests[-1].json()["messages"][-1]["content"]
        ws_root = h.workspace
        managed = [Source(label="managed", root=str(ws_root / "skills"), managed=True)]
        status = {s.name: s.status for s in discover(managed, workspace=ws_root)}
        if approved:
            assert "approved skill 'weekly-report'" in result
            assert status["weekly-report"] == "active"
            assert "weekly-report" in read_approvals(ws_root)
        else:
            assert "declined" in result and status["weekly-report"] == "draft"
            assert read_approvals(ws_root) == {}
