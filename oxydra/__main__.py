"""`python -m oxydra` entry point."""

from oxydra.cli import main

raise SystemExit(main())
