"""providers layer (see docs/ARCHITECTURE.md)."""
