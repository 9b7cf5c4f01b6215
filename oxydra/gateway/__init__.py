"""Gateway: the WebSocket server, session routing, fan-out with replay, approvals.

`GatewayCore` routes turns to the runtime's `TurnRunner` and owns the sessions;
`GatewayServer` speaks the gateway protocol (`oxydra.wire.gateway`) over WebSockets;
`MemorySessionRecords` keeps session records in the memory database, in tables the gateway
owns (`SESSION_SCHEMA` names their migrations); `SessionBook` is the session lifecycle every
channel shares (new, list, rename, archive, delete, export, audit). The `vm` mode that
assembles them lives in `oxydra.app`.
"""

from oxydra.gateway._jobs import MemoryJobs
from oxydra.gateway._store import MemorySessionRecords
from oxydra.gateway._table import SESSION_SCHEMA, AuditEntry, SessionRecord
from oxydra.gateway.core import GatewayCore
from oxydra.gateway.lifecycle import SessionBook
from oxydra.gateway.server import GatewayServer

__all__ = [
    "AuditEntry",
    "GatewayCore",
    "GatewayServer",
    "MemoryJobs",
    "MemorySessionRecords",
    "SESSION_SCHEMA",
    "SessionBook",
    "SessionRecord",
]
