-- Full-text words as SQLite's FTS5 makes them. PostgreSQL's parser keeps `backup.sh`,
-- `/etc/passwd`, `x@y.com` and `v1.2.3` as single tokens, so a search for `backup` missed
-- them, and one for `backup.sh` (cut into its words, as the query is on both stores) found
-- nothing. The vector now holds both the whole tokens and the words between punctuation.
DROP INDEX idx_chunks_tsv;
ALTER TABLE chunks DROP COLUMN chunk_tsv;
ALTER TABLE chunks ADD COLUMN chunk_tsv tsvector GENERATED ALWAYS AS (
    to_tsvector('english', chunk_text)
    || to_tsvector('english', regexp_replace(chunk_text, '[^[:alnum:]]+', ' ', 'g'))
) STORED;
CREATE INDEX idx_chunks_tsv ON chunks USING gin (chunk_tsv);
