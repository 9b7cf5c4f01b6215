-- The scheduler's tables (owned by oxydra.scheduler; shipped here so one file holds every
-- table and one runner migrates them). Timestamps are RFC 3339 UTC with seconds
-- ("2026-01-01T09:00:00+00:00"), written by the scheduler, so they compare as text.

CREATE TABLE schedules (
    schedule_id          TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL,
    name                 TEXT,
    goal                 TEXT NOT NULL,
    cadence_json         TEXT NOT NULL,
    timezone             TEXT NOT NULL,
    notification_policy  TEXT NOT NULL DEFAULT 'always'
        CHECK (notification_policy IN ('always', 'conditional', 'never')),
    status               TEXT NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'paused', 'completed', 'disabled')),
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    next_run_at          TEXT,
    last_run_at          TEXT,
    last_run_status      TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    channel_id           TEXT,
    channel_context_id   TEXT
);

CREATE INDEX idx_schedules_user_created ON schedules(user_id, created_at DESC);
CREATE INDEX idx_schedules_user_status ON schedules(user_id, status);
-- The executor's poll reads only this index: active schedules that have a next run.
CREATE INDEX idx_schedules_due
    ON schedules(next_run_at) WHERE status = 'active' AND next_run_at IS NOT NULL;

-- One row per run; `running` rows have no finished_at. A claimed run is inserted as
-- `running` in the same transaction that clears the schedule's next_run_at.
CREATE TABLE schedule_runs (
    run_id         TEXT PRIMARY KEY,
    schedule_id    TEXT NOT NULL REFERENCES schedules(schedule_id) ON DELETE CASCADE,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    status         TEXT NOT NULL
        CHECK (status IN ('running', 'success', 'failed', 'cancelled', 'interrupted')),
    output_summary TEXT,
    output         TEXT,
    turn_count     INTEGER NOT NULL DEFAULT 0,
    cost           REAL NOT NULL DEFAULT 0.0,
    notified       INTEGER NOT NULL DEFAULT 0 CHECK (notified IN (0, 1))
);

CREATE INDEX idx_schedule_runs_lookup ON schedule_runs(schedule_id, started_at DESC);
CREATE INDEX idx_schedule_runs_running ON schedule_runs(schedule_id) WHERE status = 'running';

-- Notifications no connected client has received yet; handed out (and deleted) when the
-- user's client next says hello. No foreign key: a notice outlives its schedule.
CREATE TABLE scheduled_notifications (
    notification_id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         TEXT NOT NULL,
    schedule_id     TEXT NOT NULL,
    schedule_name   TEXT,
    message         TEXT NOT NULL,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX idx_scheduled_notifications_user
    ON scheduled_notifications(user_id, notification_id);
