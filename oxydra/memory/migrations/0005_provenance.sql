-- Provenance labels (docs/taint.md): JSON `{"trust": "untrusted", "sources": [...]}` for
-- content that came from outside (web pages, MCP servers, other people, tainted notes);
-- NULL means trusted. Kept beside the content so payload_json keeps the Rust shape and
-- rows written before this migration read as trusted.

ALTER TABLE conversation_events ADD COLUMN provenance_json TEXT;
ALTER TABLE chunks ADD COLUMN provenance_json TEXT;
ALTER TABLE session_summaries ADD COLUMN provenance_json TEXT;

CREATE INDEX idx_conversation_events_untrusted
    ON conversation_events(session_id, sequence) WHERE provenance_json IS NOT NULL;

-- Web tool results stored before labels existed came from outside: label them now.
UPDATE conversation_events
   SET provenance_json = json_object(
       'trust', 'untrusted',
       'sources', json_array(json_object(
           'kind', json_extract(payload_json, '$.name'),
           'ref', 'stored before provenance labels')))
 WHERE json_extract(payload_json, '$.role') = 'tool'
   AND json_extract(payload_json, '$.name') IN ('web_fetch', 'web_search');

UPDATE chunks
   SET provenance_json = (
       SELECT e.provenance_json FROM conversation_events e
        WHERE e.session_id = chunks.session_id AND e.sequence = chunks.sequence_start)
 WHERE note_id IS NULL AND sequence_start IS NOT NULL
   AND EXISTS (
       SELECT 1 FROM conversation_events e
        WHERE e.session_id = chunks.session_id AND e.sequence = chunks.sequence_start
          AND e.provenance_json IS NOT NULL);
