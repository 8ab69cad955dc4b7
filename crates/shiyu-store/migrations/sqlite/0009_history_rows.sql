-- A row of the log may hold a whole bulk-loaded history: `span` events, the last of which has the row's `seq`
-- and `version` (so `seq` stays the log's order and `MAX(seq)` its end). Every row written before holds one.
ALTER TABLE events ADD COLUMN span INTEGER NOT NULL DEFAULT 1;
