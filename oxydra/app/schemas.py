"""Every owner's migrations, in one light module: whatever opens the store names them all,
or a store another opener upgraded is refused as newer than it knows.

The names are written out, not imported from their owners: importing `oxydra.channels` or
`oxydra.scheduler` for a constant would load every channel and the scheduler into each
`ask` (tests/app/test_schemas.py checks they are the owners' names).
"""

OWNER_SCHEMAS = (
    "oxydra.gateway.migrations",  # oxydra.gateway.SESSION_SCHEMA
    "oxydra.scheduler.migrations",  # oxydra.scheduler.SCHEDULE_SCHEMA
    "oxydra.channels.migrations",  # oxydra.channels.CHANNEL_SCHEMA
)
