"""Versioned schema migrations of the memory store, as `NNNN_name.sql` package data.

Each file is applied once, in version order, inside one transaction, and recorded in
`memory_migrations`. Never edit a released file: add a new one.
"""

__all__: list[str] = []
