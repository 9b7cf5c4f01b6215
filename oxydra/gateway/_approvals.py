"""Approval requests: a tool call waits for the user's yes or no over the gateway."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from oxydra.gateway._hub import SessionChannel
from oxydra.wire.gateway import ApprovalRequest, TurnStatus


class ApprovalBroker:
    """Pending approvals by id; answered by `approval_response` frames of the same user."""

    def __init__(self, timeout_secs: float) -> None:
        self.timeout_secs = timeout_secs
        self._pending: dict[str, tuple[str, asyncio.Future[bool]]] = {}

    def approver_for(self, channel: SessionChannel, request_id: str, turn: TurnStatus) -> Any:
        """An approver callable bound to one turn of one session."""

        async def approve(
            tool_name: str,
            arguments: dict[str, Any],
            tier: str,
            /,
            *,
            reason: str = "",
            sources: tuple[str, ...] = (),
        ) -> bool:
            approval_id = uuid.uuid4().hex
            future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._pending[approval_id] = (channel.user_id, future)
            channel.publish(
                ApprovalRequest(
                    request_id=request_id,
                    session=channel.ref,
                    turn=turn,
                    approval_id=approval_id,
                    tool_name=tool_name,
                    arguments=arguments,
                    safety_tier=tier,
                    expires_in_secs=int(self.timeout_secs),
                    reason=reason or None,
                    taint_sources=list(sources) or None,
                )
            )
            try:
                return await asyncio.wait_for(future, self.timeout_secs)
            except TimeoutError:
                return False
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
