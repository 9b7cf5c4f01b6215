"""The composition root: builds what `ask` and `vm` run from config, above every other layer.

`open_services` opens one user's store and builds the runtime, the scheduler's tools and its
executor (and, as they land, channels and MCP clients); `serve_vm` puts the gateway in front
of them. Nothing below this package wires packages of its own layer together, so the layers
stay acyclic (tests/test_layering.py). The CLI imports the modes `oxydra.app.ask` and
`oxydra.app.vm` by name.
"""

import typing as _typing

from oxydra._lazy import lazy_getattr as _lazy_getattr

if _typing.TYPE_CHECKING:
    from oxydra.app.services import Services, open_services, sidecar_shell
    from oxydra.app.vm import serve_vm

__all__ = ["Services", "open_services", "serve_vm", "sidecar_shell"]

__getattr__ = _lazy_getattr(
    globals(),
    {
        "Services": "oxydra.app.services",
        "open_services": "oxydra.app.services",
        "serve_vm": "oxydra.app.vm",
        "sidecar_shell": "oxydra.app.services",
    },
)
