"""Runtime test fixtures: the pinned catalog is shared with the provider tests."""

from tests.providers.conftest import catalog

__all__ = ["catalog"]
