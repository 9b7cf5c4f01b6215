-- PostgreSQL twin of migrations/0008 (frames shared between hosts).

CREATE TABLE session_frames (
    session_id TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    frame_json TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
