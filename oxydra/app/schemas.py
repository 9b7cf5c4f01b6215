"""Every owner's migrations, in one light module: whatever opens the store names them all,
or a store another opener upgraded is refused as newer than it knows."""

from oxydra.channels._store import CHANNEL_SCHEMA
from oxydra.gateway._table import SESSION_SCHEMA
from oxydra.scheduler._table import SCHEDULE_SCHEMA

OWNER_SCHEMAS = (SESSION_SCHEMA, SCHEDULE_SCHEMA, CHANNEL_SCHEMA)
