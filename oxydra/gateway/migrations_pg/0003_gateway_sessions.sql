-- PostgreSQL twin of migrations/0003 (gateway sessions and channel mappings).

CREATE TABLE gateway_sessions (
    session_id        TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL,
    agent_name        TEXT NOT NULL DEFAULT 'default',
    display_name      TEXT,
    channel_origin    TEXT NOT NULL DEFAULT 'tui',
    parent_session_id TEXT REFERENCES gateway_sessions(session_id) ON DELETE SET NULL,
    created_at        TEXT NOT NULL DEFAULT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
    last_active_at    TEXT NOT NULL DEFAULT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
    archived          INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1))
);

CREATE INDEX idx_gateway_sessions_user_active
    ON gateway_sessions(user_id, archived, last_active_at DESC);
CREATE INDEX idx_gateway_sessions_parent
    ON gateway_sessions(parent_session_id) WHERE parent_session_id IS NOT NULL;

CREATE TABLE channel_session_mappings (
    channel_id         TEXT NOT NULL,
    channel_context_id TEXT NOT NULL,
    session_id         TEXT NOT NULL REFERENCES gateway_sessions(session_id) ON DELETE CASCADE,
    created_at         TEXT NOT NULL DEFAULT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
    updated_at         TEXT NOT NULL DEFAULT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
    PRIMARY KEY (channel_id, channel_context_id)
);
