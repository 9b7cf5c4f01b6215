"""Gateway: the WebSocket server, session routing, fan-out with replay, approvals.

`GatewayCore` routes turns to the runtime's `TurnRunner` and owns the sessions;
`GatewayServer` speaks the gateway protocol (`oxydra.wire.gateway`) over WebSockets;
`MemorySessionRecords` keeps session records in the memory database, in tables the gateway
owns (`SESSION_SCHEMA` names their migrations); `SessionBook` is the session lifecycle every
channel shares (new, list, rename, archive, delete, export, audit); `TurnLeases` keeps one
turn per session across hosts sharing a PostgreSQL store and `FrameRelay` carries a turn's
frames to the clients of the other hosts. The `vm` mode that assembles them lives in
`oxydra.app`.
"""

import typing as _typing

from oxydra._lazy import lazy_getattr as _lazy_getattr

if _typing.TYPE_CHECKING:
    from oxydra.gateway._admission import RefusedError
    from oxydra.gateway._jobs import MemoryJobs
    from oxydra.gateway._lease import TurnLeases
    from oxydra.gateway._relay import FrameRelay
    from oxydra.gateway._store import MemorySessionRecords
    from oxydra.gateway._table import SESSION_SCHEMA, AuditEntry, SessionRecord
    from oxydra.gateway.core import GatewayCore
    from oxydra.gateway.lifecycle import SessionBook
    from oxydra.gateway.server import GatewayServer, HttpFront

__all__ = [
    "AuditEntry",
    "FrameRelay",
    "GatewayCore",
    "GatewayServer",
    "HttpFront",
    "MemoryJobs",
    "MemorySessionRecords",
    "RefusedError",
    "SESSION_SCHEMA",
    "SessionBook",
    "SessionRecord",
    "TurnLeases",
]

__getattr__ = _lazy_getattr(
    globals(),
    {
        "AuditEntry": "oxydra.gateway._table",
        "FrameRelay": "oxydra.gateway._relay",
        "MemoryJobs": "oxydra.gateway._jobs",
        "RefusedError": "oxydra.gateway._admission",
        "SessionBook": "oxydra.gateway.lifecycle",
        "SessionRecord": "oxydra.gateway._table",
        "TurnLeases": "oxydra.gateway._lease",
        "GatewayCore": "oxydra.gateway.core",
        "GatewayServer": "oxydra.gateway.server",
        "HttpFront": "oxydra.gateway.server",
        "MemorySessionRecords": "oxydra.gateway._store",
        "SESSION_SCHEMA": "oxydra.gateway._table",
    },
)
