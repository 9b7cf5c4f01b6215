"""A tool a turn's channel cannot carry out is not offered to the model in that turn.

`send_media` needs a chat that shows files (Telegram); in the terminal, `ask` or a scheduled
run it could only fail, and its schema is 0.6 KB of every request.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oxydra.config.schema import RuntimeConfig
from oxydra.runtime.api import TurnRequest
from oxydra.runtime.loop import AgentRuntime
from oxydra.runtime.registry_tools import RegistryExecutor
from oxydra.runtime.tokens import EstimateCounter
from oxydra.security import Workspace
from oxydra.testing.mock_provider import MockProvider, reply
from oxydra.tools import LocalFileBackend, ToolRegistry
from oxydra.tools._defaults import FILE_TOOLS
from oxydra.tools._media import send_media
from tests.runtime.support import Sink


@pytest.mark.parametrize(("media_types", "offered"), [((), False), (("photo",), True)])
async def test_send_media_is_offered_only_where_the_chat_shows_files(
    tmp_path: Path, media_types: tuple[str, ...], offered: bool
) -> None:
    for sub in ("shared", "tmp", "vault"):
        (tmp_path / sub).mkdir()
    backend = LocalFileBackend(Workspace.for_user(tmp_path))
    registry = ToolRegistry()
    registry.register_all([*FILE_TOOLS, send_media])
    provider = MockProvider([reply("done")])
    runtime = AgentRuntime(
        provider=provider,
        tools=RegistryExecutor(registry, lambda _user: backend),
        config=RuntimeConfig(),
        provider_id="mock",
        model="m",
        system_prompt="test",
        counter=EstimateCounter(),
    )
    request = TurnRequest(
        user_id="u", session_id="s", turn_id="t", prompt="hi", media_types=media_types
    )
    outcome = await runtime.run_turn(request, Sink())
    assert outcome.ok, outcome.detail
    names = {t.name for t in provider.contexts[0].tools}
    assert ("send_media" in names) is offered
    assert "file_read" in names
