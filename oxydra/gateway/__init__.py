"""Gateway: the WebSocket server, session routing, fan-out with replay, approvals.

`GatewayCore` routes turns to the runtime's `TurnRunner` and owns the sessions;
`GatewayServer` speaks the gateway protocol (`oxydra.wire.gateway`) over WebSockets;
`MemorySessionRecords` keeps session records in the memory database, in tables the gateway
owns (`SESSION_SCHEMA` names their migrations). The `vm` mode that assembles them lives in
`oxydra.app`.
"""

import typing as _typing

from oxydra._lazy import lazy_getattr as _lazy_getattr

if _typing.TYPE_CHECKING:
    from oxydra.gateway._store import MemorySessionRecords
    from oxydra.gateway._table import SESSION_SCHEMA
    from oxydra.gateway.core import GatewayCore
    from oxydra.gateway.server import GatewayServer, HttpFront

__all__ = [
    "GatewayCore",
    "GatewayServer",
    "HttpFront",
    "MemorySessionRecords",
    "SESSION_SCHEMA",
]

__getattr__ = _lazy_getattr(
    globals(),
    {
        "GatewayCore": "oxydra.gateway.core",
        "GatewayServer": "oxydra.gateway.server",
        "HttpFront": "oxydra.gateway.server",
        "MemorySessionRecords": "oxydra.gateway._store",
        "SESSION_SCHEMA": "oxydra.gateway._table",
    },
)
