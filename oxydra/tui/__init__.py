"""TUI: the terminal client (blessed) over the gateway protocol.

The facade is the connection (`GatewayClient`, which the runner also uses to probe a guest);
the full-screen app `oxydra.tui.app` is imported by the CLI only when it runs, since it loads
blessed.
"""

from oxydra.tui.client import ConnectionState, GatewayClient

__all__ = ["ConnectionState", "GatewayClient"]
