"""MCP servers the tests start: our misbehaving one, and one on the official SDK."""
