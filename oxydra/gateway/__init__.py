"""gateway layer (see docs/ARCHITECTURE.md)."""
