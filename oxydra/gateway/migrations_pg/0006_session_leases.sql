-- PostgreSQL twin of migrations/0006 (turn leases across hosts).

CREATE TABLE session_leases (
    session_id  TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    turn_id     TEXT,
    lease_until DOUBLE PRECISION
);
