"""CancellationToken semantics."""

from __future__ import annotations

import asyncio

import pytest

from oxydra.core.errors import AgentError
from oxydra.tools import CancellationToken


async def test_cancel_wakes_waiters_with_the_first_reason() -> None:
    token = CancellationToken()
    waiter = asyncio.ensure_future(token.wait())
    token.cancel("first")
    token.cancel("second")
    assert await waiter == "first" and token.cancelled


def test_children_follow_their_parent_but_not_the_reverse() -> None:
    parent = CancellationToken()
    child = parent.child()
    grandchild = child.child()
    child.cancel("child only")
    assert grandchild.cancelled and not parent.cancelled
    sibling = parent.child()
    parent.cancel("all")
    assert sibling.reason == "all"


def test_child_of_a_cancelled_token_starts_cancelled() -> None:
    parent = CancellationToken()
    parent.cancel("gone")
    assert parent.child().reason == "gone"


def test_raise_if_cancelled_names_the_reason() -> None:
    token = CancellationToken()
    token.raise_if_cancelled()
    token.cancel("budget")
    with pytest.raises(AgentError, match="budget"):
        token.raise_if_cancelled()
