-- Turn leases (gateway/_lease.py): while a turn of a session runs on a host, its row names
-- that host and a lease expiry (Unix seconds); a turn asked for on another host waits for
-- the lease. Used when several hosts share a PostgreSQL store; kept on SQLite too so both
-- backends hold the same tables.

CREATE TABLE session_leases (
    session_id  TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    turn_id     TEXT,
    lease_until REAL
);
