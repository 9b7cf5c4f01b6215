-- Conversation sessions, their event log, per-session state and rolling summaries.
-- Timestamps are ISO-8601 UTC with milliseconds, so they sort as text.

CREATE TABLE sessions (
    session_id     TEXT PRIMARY KEY,
    user_id        TEXT,
    agent_identity TEXT,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX idx_sessions_user_updated_at ON sessions(user_id, updated_at DESC);

-- One row per stored message; `sequence` strictly increases within a session.
CREATE TABLE conversation_events (
    session_id   TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    sequence     INTEGER NOT NULL CHECK (sequence > 0),
    payload_json TEXT NOT NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (session_id, sequence)
);

-- Free-form JSON state per session (scratchpad and whatever later layers keep).
CREATE TABLE session_state (
    session_id TEXT PRIMARY KEY REFERENCES sessions(session_id) ON DELETE CASCADE,
    state_json TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Each rolling summary with the range of events it covers; the events stay in the log.
-- The row with the highest epoch is the current summary.
CREATE TABLE session_summaries (
    session_id     TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    epoch          INTEGER NOT NULL CHECK (epoch > 0),
    lower_sequence INTEGER NOT NULL CHECK (lower_sequence > 0),
    upper_sequence INTEGER NOT NULL,
    summary        TEXT NOT NULL,
    metadata_json  TEXT NOT NULL DEFAULT '{}',
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (session_id, epoch),
    CHECK (lower_sequence <= upper_sequence)
);
