-- PostgreSQL twin of migrations/0005. No rows predate labels here (a store imported from
-- SQLite brings its labels along), so only the columns and the index.

ALTER TABLE conversation_events ADD COLUMN provenance_json TEXT;
ALTER TABLE chunks ADD COLUMN provenance_json TEXT;
ALTER TABLE session_summaries ADD COLUMN provenance_json TEXT;

CREATE INDEX idx_conversation_events_untrusted
    ON conversation_events(session_id, sequence) WHERE provenance_json IS NOT NULL;
