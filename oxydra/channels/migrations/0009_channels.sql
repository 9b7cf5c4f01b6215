-- External chat channels: crash-safe ingress (offset + inbox in one transaction), a durable
-- outbox with the ids of what was sent, and the people's sessions and daily spend.

CREATE TABLE channel_offsets (
    channel        TEXT PRIMARY KEY,      -- 'telegram:<bot id>'
    last_update_id INTEGER NOT NULL
);

CREATE TABLE channel_inbox (
    channel        TEXT NOT NULL,
    update_id      INTEGER NOT NULL,
    person         TEXT NOT NULL,
    context_id     TEXT NOT NULL,         -- '<chat_id>' or '<chat_id>:<thread_id>'
    payload_json   TEXT NOT NULL,         -- the message as received
    state          TEXT NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'running', 'answered')),
    placeholder_id INTEGER,               -- the "working" message, edited into the answer
    session_id     TEXT,
    received_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    answered_at    TEXT,
    PRIMARY KEY (channel, update_id)
);
CREATE INDEX idx_channel_inbox_open ON channel_inbox(channel, update_id)
    WHERE state != 'answered';

CREATE TABLE channel_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel         TEXT NOT NULL,
    context_id      TEXT NOT NULL,
    update_id       INTEGER,              -- the message answered (NULL: a notification)
    kind            TEXT NOT NULL CHECK (kind IN ('send', 'edit', 'media')),
    edit_message_id INTEGER,
    html            TEXT,
    plain           TEXT NOT NULL DEFAULT '',
    media_json      TEXT,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    sent_message_id INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    sent_at         TEXT
);
CREATE INDEX idx_channel_outbox_pending ON channel_outbox(channel, id) WHERE state = 'pending';

CREATE TABLE person_sessions (
    person     TEXT NOT NULL,
    channel    TEXT NOT NULL,
    context_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (person, channel, context_id)
);
CREATE INDEX idx_person_sessions_session ON person_sessions(session_id);

CREATE TABLE person_spend (
    person   TEXT NOT NULL,
    day      TEXT NOT NULL,                -- UTC date
    cost_usd REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (person, day)
);
