"""scheduler layer (see docs/ARCHITECTURE.md)."""
