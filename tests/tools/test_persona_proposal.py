"""USER.md changes from the model are proposals: applied only on the human's yes, audited
either way, and never possible without an approver."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from oxydra.security import Workspace
from oxydra.tools import (
    ApprovalRequest,
    LocalFileBackend,
    ToolExecutionContext,
    ToolRegistry,
    user_profile_tool,
)


def context(tmp: Path, answer: bool | None, seen: list[ApprovalRequest]) -> ToolExecutionContext:
    async def approve(request: ApprovalRequest, /) -> bool:
        seen.append(request)
        return bool(answer)

    backend = LocalFileBackend(Workspace.for_user(tmp / "ws"))
    hook = approve if answer is not None else None
    return ToolExecutionContext(user_id="u", session_id="s", workspace=backend, approval=hook)


@pytest.mark.parametrize(
    ("answer", "written", "says", "outcome"),
    [
        (True, True, "applies from the next session", "applied"),
        (False, False, "declined", "declined"),
        (None, False, "no approver", "refused"),
    ],
)
async def test_a_proposal_applies_only_on_a_yes_and_is_audited(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    answer: bool | None,
    written: bool,
    says: str,
    outcome: str,
) -> None:
    user_md = tmp_path / "ws" / ".oxydra" / "USER.md"
    registry = ToolRegistry()
    registry.register(user_profile_tool(user_md))
    seen: list[ApprovalRequest] = []
    args = {"text": "Kim prefers metric units.", "reason": "the user said so"}
    with caplog.at_level(logging.WARNING, logger="oxydra.audit"):
        result = await registry.execute(
            "user_profile_propose", args, context(tmp_path, answer, seen)
        )
    assert says in result.text
    assert user_md.exists() is written
    if written:
        assert user_md.read_text() == "Kim prefers metric units.\n"
    if answer is not None:
        assert seen[0].arguments["text"] == "Kim prefers metric units."
    audit = [r for r in caplog.records if r.name == "oxydra.audit"]
    assert audit and audit[0].getMessage() == f"USER.md proposal {outcome}"
