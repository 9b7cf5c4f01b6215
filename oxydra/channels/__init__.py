"""channels layer (see docs/ARCHITECTURE.md)."""
