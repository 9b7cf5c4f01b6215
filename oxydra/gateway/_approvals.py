"""Approval requests: a tool call waits for the person's yes or no over the gateway.

How long it waits is the tool registry's policy (`[tools.approval] timeout_secs`, enforced
there); the broker only tells the client when the question expires.

An approval is bound to the connection that started the turn (its `owner`): only that
client may answer it. Every client of a user holds the same token (in the process tier the
guest's own `ipc/gateway-token`), so "same user" is not "the person": a process that got
hold of the token could otherwise join the session and approve its own privileged call.
A turn with no owning connection (a scheduled run) cannot be approved over the gateway;
its approvals time out as a no. If the owning client disconnects, its pending approvals
can no longer be answered and time out as well.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Literal

from oxydra.gateway._hub import SessionChannel
from oxydra.tools import ApprovalHook
from oxydra.tools import ApprovalRequest as ToolCallApproval
from oxydra.wire.gateway import ApprovalRequest, TurnStatus

Answer = Literal["answered", "unknown", "not_owner"]


@dataclass
class _Pending:
    user_id: str
    owner: object | None
    future: asyncio.Future[bool]


class ApprovalBroker:
    """Pending approvals by id; answered only by the connection that started the turn."""

    def __init__(self, timeout_secs: float) -> None:
        self.timeout_secs = timeout_secs
        self._pending: dict[str, _Pending] = {}

    def approver_for(
        self, channel: SessionChannel, request_id: str, turn: TurnStatus, owner: object | None
    ) -> ApprovalHook:
        """An approver bound to one turn of one session and its owning client."""

        async def approve(call: ToolCallApproval) -> bool:
            approval_id = uuid.uuid4().hex
            future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._pending[approval_id] = _Pending(channel.user_id, owner, future)
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
                )
            )
            try:
                return await future
            finally:
                self._pending.pop(approval_id, None)

        return approve

    def answer(self, user_id: str, approval_id: str, approved: bool, answerer: object) -> Answer:
        """Resolve a pending approval if `answerer` is the client that started its turn."""
        entry = self._pending.get(approval_id)
        if entry is None or entry.user_id != user_id or entry.future.done():
            return "unknown"
        if entry.owner is None or entry.owner is not answerer:
            return "not_owner"
        entry.future.set_result(approved)
        return "answered"
