"""The PostgreSQL twins of `oxydra.channels.migrations`: the same versions and tables, in
PostgreSQL's dialect (docs/postgres.md). Every released step has a twin here; never edit a
released file: add a new one.
"""

__all__: list[str] = []
