-- Run leases: the host running a claimed run and until when (Unix seconds) it vouches for
-- it. With several hosts on one PostgreSQL store, a run whose lease expired belongs to a
-- dead host and is taken over (scheduler/executor.py, rule 7); a single host recovers
-- every `running` run at start-up as before, so on SQLite these stay NULL.

ALTER TABLE schedule_runs ADD COLUMN lease_holder TEXT;
ALTER TABLE schedule_runs ADD COLUMN lease_until REAL;
