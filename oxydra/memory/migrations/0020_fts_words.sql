-- Nothing changes on SQLite: FTS5's unicode61 tokenizer already cuts `backup.sh`,
-- `/etc/passwd` and `x@y.com` into their words. The PostgreSQL twin makes its full-text
-- vector do the same; the step exists here so both stores carry the same versions, and
-- it merges the index's segments (FTS5's `optimize`) while the store is being upgraded.
INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize');
