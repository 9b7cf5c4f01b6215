"""Fixtures shared by the channel tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from oxydra.channels import CHANNEL_SCHEMA
from oxydra.gateway import SESSION_SCHEMA
from oxydra.memory import HashedEmbedder, Memory


@pytest.fixture(params=["sqlite", "postgres"])
async def either_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Memory]:
    """A store with the channels' and sessions' tables, on SQLite and then on PostgreSQL
    (the SQL is shared, so every statement must run on both)."""
    target: Any = tmp_path / "shared.db"
    if request.param == "postgres":
        from oxydra.memory._pg import PgDatabase

        target = PgDatabase(request.getfixturevalue("pg_url"))
    memory = await Memory.open(
        target, embedder=HashedEmbedder(), schemas=[SESSION_SCHEMA, CHANNEL_SCHEMA]
    )
    yield memory
    await memory.close()
