-- PostgreSQL twin of migrations/0019 (background delegations).

CREATE TABLE subagent_jobs (
    job_id            TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL,
    parent_session_id TEXT NOT NULL,
    job_json          TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'done', 'failed', 'cancelled')),
    result            TEXT,
    created_at        TEXT NOT NULL DEFAULT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
    finished_at       TEXT
);

CREATE INDEX idx_subagent_jobs_pending ON subagent_jobs(created_at) WHERE status = 'pending';
