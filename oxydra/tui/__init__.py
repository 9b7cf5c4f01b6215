"""tui layer (see docs/ARCHITECTURE.md)."""
