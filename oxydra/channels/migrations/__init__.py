"""The channels' schema steps (`channel_offsets`, `channel_inbox`, `channel_outbox`,
`person_sessions`, `person_spend`), applied by the memory store when the app opens it with
`oxydra.channels.CHANNEL_SCHEMA`.

Versions share one sequence with every other owner of the database file; never edit a
released file: add a new one.
"""

__all__: list[str] = []
