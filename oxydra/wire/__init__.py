"""wire layer (see docs/ARCHITECTURE.md)."""
