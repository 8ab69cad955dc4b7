-- Case states and events are stored in the compact binary form of `shiyu_store::codec`. Rows written before it
-- hold JSON text, which becomes its UTF-8 bytes here; the decoder reads both.
ALTER TABLE cases ALTER COLUMN state TYPE BYTEA USING convert_to(state, 'UTF8');
ALTER TABLE events ALTER COLUMN payload TYPE BYTEA USING convert_to(payload, 'UTF8');
