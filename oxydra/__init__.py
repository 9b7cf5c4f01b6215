"""Oxydra: a self-hosted AI agent orchestrator shipped as one file.

The package is laid out in layers (see docs/ARCHITECTURE.md); imports only go downward.
"""

__version__ = "0.3.0"

__all__ = ["__version__"]
