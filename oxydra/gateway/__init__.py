"""Gateway: the WebSocket server, session routing, fan-out with replay, approvals.

`GatewayCore` routes turns to the runtime's `TurnRunner` and owns the sessions;
`GatewayServer` speaks the gateway protocol (`oxydra.wire.gateway`) over WebSockets;
`MemorySessionRecords` keeps session records in the memory database, in tables the gateway
owns (`SESSION_SCHEMA` names their migrations); `TurnLeases` keeps one turn per session
across hosts sharing a PostgreSQL store and `FrameRelay` carries a turn's frames to the
clients of the other hosts. The `vm` mode that assembles them lives in
`oxydra.app`.
"""

from oxydra.gateway._lease import TurnLeases
from oxydra.gateway._relay import FrameRelay
from oxydra.gateway._store import MemorySessionRecords
from oxydra.gateway._table import SESSION_SCHEMA
from oxydra.gateway.core import GatewayCore
from oxydra.gateway.server import GatewayServer

__all__ = [
    "FrameRelay",
    "GatewayCore",
    "GatewayServer",
    "MemorySessionRecords",
    "SESSION_SCHEMA",
    "TurnLeases",
]
