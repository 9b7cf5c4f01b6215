-- PostgreSQL twin of migrations/0001: the same tables and columns (timestamps stay
-- ISO-8601 text, so rows move between backends unchanged), plus the three SQLite
-- functions the owners' SQL uses, so that SQL runs here as written (memory/_pg.py).

-- strftime('%Y-%m-%dT%H:%M:%fZ', 'now'): the only form the owners use.
CREATE FUNCTION strftime(fmt text, what text) RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN fmt = '%Y-%m-%dT%H:%M:%fZ' AND what = 'now'
        THEN to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    END
$$;

-- json_extract(doc, '$.a.b'): the text of a scalar at a dotted path (NULL when absent).
CREATE FUNCTION json_extract(doc text, path text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN path = '$' THEN doc
        ELSE doc::jsonb #>> string_to_array(substr(path, 3), '.') END
$$;

-- json_each(doc, '$' | '$.a'): the elements of the array at the path, as text `value`.
CREATE FUNCTION json_each(doc text, path text) RETURNS TABLE(value text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_array_elements_text(CASE WHEN path = '$' THEN doc::jsonb
        ELSE doc::jsonb #> string_to_array(substr(path, 3), '.') END)
$$;

CREATE TABLE sessions (
    session_id     TEXT PRIMARY KEY,
    user_id        TEXT,
    agent_identity TEXT,
    created_at     TEXT NOT NULL DEFAULT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
    updated_at     TEXT NOT NULL DEFAULT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
);

CREATE INDEX idx_sessions_user_updated_at ON sessions(user_id, updated_at DESC);

CREATE TABLE conversation_events (
    session_id   TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    sequence     BIGINT NOT NULL CHECK (sequence > 0),
    payload_json TEXT NOT NULL,
    created_at   TEXT NOT NULL DEFAULT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
    PRIMARY KEY (session_id, sequence)
);

CREATE TABLE session_state (
    session_id TEXT PRIMARY KEY REFERENCES sessions(session_id) ON DELETE CASCADE,
    state_json TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL DEFAULT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
);

CREATE TABLE session_summaries (
    session_id     TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    epoch          BIGINT NOT NULL CHECK (epoch > 0),
    lower_sequence BIGINT NOT NULL CHECK (lower_sequence > 0),
    upper_sequence BIGINT NOT NULL,
    summary        TEXT NOT NULL,
    metadata_json  TEXT NOT NULL DEFAULT '{}',
    created_at     TEXT NOT NULL DEFAULT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
    PRIMARY KEY (session_id, epoch),
    CHECK (lower_sequence <= upper_sequence)
);
