"""Pinned model catalog data, imported as `oxydra.catalog.data` (mapped in setup.py)."""

__all__: list[str] = []
