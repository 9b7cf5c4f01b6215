"""The scheduler's schema steps (`schedules`, `schedule_runs`, `scheduled_notifications`),
applied by the memory store when the app opens it with `oxydra.scheduler.SCHEDULE_SCHEMA`.

Versions share one sequence with every other owner of the database file; never edit a
released file: add a new one.
"""

__all__: list[str] = []
