"""security layer (see docs/ARCHITECTURE.md)."""
