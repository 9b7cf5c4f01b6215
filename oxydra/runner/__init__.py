"""runner layer (see docs/ARCHITECTURE.md)."""
