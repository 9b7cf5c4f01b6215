-- Session lifecycle (issue 18): per-session turn and cost totals for listings, and an audit
-- log of every lifecycle step (who, from which channel, old id -> new id on a rollover).

ALTER TABLE gateway_sessions ADD COLUMN turns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gateway_sessions ADD COLUMN cost_usd REAL;

CREATE TABLE session_audit (
    audit_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        TEXT NOT NULL,
    channel        TEXT NOT NULL,
    action         TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    old_session_id TEXT,
    detail         TEXT,
    at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX idx_session_audit_user_at ON session_audit(user_id, at DESC);
