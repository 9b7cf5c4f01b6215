"""`user_profile_propose`: the one way the model can change persona text, and only USER.md.

The model proposes a complete new USER.md; the tool itself asks the human through the
call's approval hook (whatever `[tools.approval]` says, since a persona change must never
run unattended), writes the file to the workspace's `.oxydra/` only on a yes, and audits
the outcome either way. The change applies from the next session, like an operator's edit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import msgspec

from oxydra.core.errors import PolicyError
from oxydra.core.log import get_logger
from oxydra.core.tiers import SafetyTier
from oxydra.tools._context import ApprovalRequest, ToolExecutionContext
from oxydra.tools._decorator import FunctionTool, tool

Profile = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
APPROVAL_WAIT_SECS = 300
_audit = get_logger("oxydra.audit")


def user_profile_tool(user_md: Path) -> FunctionTool:
    """The proposal tool writing to `user_md` (the workspace's `.oxydra/USER.md`)."""

    @tool(
        name="user_profile_propose",
        timeout=APPROVAL_WAIT_SECS,
        safety_tier=SafetyTier.SIDE_EFFECTING,
    )
    async def user_profile_propose(ctx: ToolExecutionContext, text: Profile, reason: Reason) -> str:
        """Propose a new USER.md (facts about the user); the user must approve it.

        Args:
            text: The complete new USER.md (Markdown).
            reason: One line for the user: what changes and why.
        """
        if ctx.approval is None:
            _record(ctx, "refused", "no approver")
            raise PolicyError("USER.md changes need the user's approval and no approver is here")
        request = ApprovalRequest(
            tool="user_profile_propose",
            safety_tier=SafetyTier.SIDE_EFFECTING,
            arguments={"reason": reason, "text": text},
            user_id=ctx.user_id,
            session_id=ctx.session_id,
            call_id=ctx.call_id,
        )
        if not await ctx.approval(request):
            _record(ctx, "declined", reason)
            return "The user declined the proposal; USER.md is unchanged."
        user_md.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = user_md.with_name(f".USER.md.{os.getpid()}.tmp")
        tmp.write_text(text.strip() + "\n", encoding="utf-8")
        tmp.replace(user_md)
        _record(ctx, "applied", reason)
        return "USER.md updated with the user's approval; it applies from the next session."

    return user_profile_propose


def _record(ctx: ToolExecutionContext, outcome: str, reason: str) -> None:
    attrs = {"audit": "persona_proposal", "outcome": outcome, "user": ctx.user_id, "reason": reason}
    _audit.warning("USER.md proposal %s", outcome, extra={"oxy": attrs})
