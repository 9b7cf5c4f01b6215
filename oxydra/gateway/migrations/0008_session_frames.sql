-- The frames of each session's recent turns with their session-wide sequence numbers
-- (gateway/_relay.py): with several hosts on a PostgreSQL store, the host running a turn
-- writes its frames here and notifies the others, whose clients receive them and may
-- resume on any host with `last_seq`. Kept on SQLite too so both backends hold the same
-- tables; a single host does not write it.

CREATE TABLE session_frames (
    session_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    frame_json TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
