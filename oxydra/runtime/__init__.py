"""runtime layer (see docs/ARCHITECTURE.md)."""
