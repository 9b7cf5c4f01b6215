"""Approval requests: a tool call waits for the user's yes or no over the gateway.

How long it waits is the tool registry's policy (`[tools.approval] timeout_secs`, enforced
there); the broker only tells the client when the question expires.
"""

from __future__ import annotations

import asyncio
import uuid

from oxydra.gateway._hub import SessionChannel
from oxydra.tools import ApprovalHook
from oxydra.tools import ApprovalRequest as ToolCallApproval
from oxydra.wire.gateway import ApprovalRequest, TurnStatus


class ApprovalBroker:
    """Pending approvals by id; answered by `approval_response` frames of the same user."""

    def __init__(self, timeout_secs: float) -> None:
        self.timeout_secs = timeout_secs
        self._pending: dict[str, tuple[str, asyncio.Future[bool]]] = {}

    def approver_for(
        self, channel: SessionChannel, request_id: str, turn: TurnStatus
    ) -> ApprovalHook:
        """An approver bound to one turn of one session."""

        async def approve(call: ToolCallApproval) -> bool:
            approval_id = uuid.uuid4().hex
            future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._pending[approval_id] = (channel.user_id, future)
            channel.publish(
                ApprovalRequest(
                    request_id=request_id,
                    session=channel.ref,
                    turn=turn,
                    approval_id=approval_id,
                    tool_name=call.tool,
                    arguments=call.arguments,
                    safety_tier=str(call.safety_tier),
                    expires_in_secs=int(self.timeout_secs),
                    reason=call.reason or None,
                    taint_sources=list(call.taint_sources) or None,
                )
            )
            try:
                return await future
            finally:
                self._pending.pop(approval_id, None)

        return approve

    def answer(self, user_id: str, approval_id: str, approved: bool) -> bool:
        """Resolve a pending approval; False if unknown or owned by another user."""
        entry = self._pending.get(approval_id)
        if entry is None or entry[0] != user_id or entry[1].done():
            return False
        entry[1].set_result(approved)
        return True
