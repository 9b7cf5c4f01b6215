"""memory layer (see docs/ARCHITECTURE.md)."""
