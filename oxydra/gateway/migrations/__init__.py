"""The gateway's schema steps (`gateway_sessions`, `channel_session_mappings`), applied by the
memory store when the app opens it with `oxydra.gateway.SESSION_SCHEMA`.

Versions share one sequence with every other owner of the database file; never edit a
released file: add a new one.
"""

__all__: list[str] = []
