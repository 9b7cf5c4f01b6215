"""`python -m oxydra` entry point."""

from oxydra.cli import entry

entry()
