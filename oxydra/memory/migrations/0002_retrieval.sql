-- Retrieval: source files, text chunks, their vectors and an FTS5 index kept in sync by
-- triggers. `chunk_key` is the integer key shared by the FTS rowid and the usearch index;
-- AUTOINCREMENT guarantees a key is never reused, so a key's vector never changes (a
-- changed chunk is deleted and inserted under a new key).

CREATE TABLE memory_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Bumped in every transaction that adds or removes vectors; the persisted vector index
-- records the generation it reflects, so a stale index file is detected at open.
INSERT INTO memory_meta(key, value) VALUES ('vector_generation', '0');

CREATE TABLE files (
    file_id       INTEGER PRIMARY KEY,
    session_id    TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    source_uri    TEXT NOT NULL,
    content_hash  TEXT NOT NULL DEFAULT '',
    metadata_json TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (session_id, source_uri, content_hash)
);

CREATE TABLE chunks (
    chunk_key      INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id       TEXT NOT NULL UNIQUE,
    session_id     TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    user_id        TEXT,
    file_id        INTEGER REFERENCES files(file_id) ON DELETE SET NULL,
    note_id        TEXT,
    sequence_start INTEGER,
    sequence_end   INTEGER,
    chunk_text     TEXT NOT NULL,
    metadata_json  TEXT NOT NULL DEFAULT '{}',
    content_hash   TEXT NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX idx_chunks_session_created_at ON chunks(session_id, created_at DESC);
CREATE INDEX idx_chunks_user_session ON chunks(user_id, session_id);
CREATE INDEX idx_chunks_file_id ON chunks(file_id);
CREATE INDEX idx_chunks_session_content_hash ON chunks(session_id, content_hash);
CREATE INDEX idx_chunks_note_id ON chunks(note_id) WHERE note_id IS NOT NULL;

-- float32 little-endian vectors; `embedding_model` names the embedder that made them.
CREATE TABLE chunks_vec (
    chunk_key       INTEGER PRIMARY KEY REFERENCES chunks(chunk_key) ON DELETE CASCADE,
    embedding_blob  BLOB NOT NULL,
    embedding_model TEXT NOT NULL,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX idx_chunks_vec_model ON chunks_vec(embedding_model);

-- External-content FTS5 table over chunks.chunk_text (no second copy of the text);
-- the porter stemmer lets "flight" match "flights".
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    chunk_text,
    content = 'chunks',
    content_rowid = 'chunk_key',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER trg_chunks_fts_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, chunk_text) VALUES (new.chunk_key, new.chunk_text);
END;

CREATE TRIGGER trg_chunks_fts_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, chunk_text)
        VALUES ('delete', old.chunk_key, old.chunk_text);
END;

CREATE TRIGGER trg_chunks_fts_au AFTER UPDATE OF chunk_text ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, chunk_text)
        VALUES ('delete', old.chunk_key, old.chunk_text);
    INSERT INTO chunks_fts(rowid, chunk_text) VALUES (new.chunk_key, new.chunk_text);
END;
