-- PostgreSQL twin of migrations/0007 (run leases across hosts).

ALTER TABLE schedule_runs ADD COLUMN lease_holder TEXT;
ALTER TABLE schedule_runs ADD COLUMN lease_until DOUBLE PRECISION;

CREATE INDEX idx_schedule_runs_lease ON schedule_runs(lease_until) WHERE status = 'running';
