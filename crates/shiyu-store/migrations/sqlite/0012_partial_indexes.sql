-- Most cases have no signed-in reporter (hotline calls, patrols, sensors) and most lie in no micro-grid, so
-- these two indexes held an entry for every case that no query can use: a lookup by reporter or micro-grid
-- names one. Only the cases that have one are indexed now, which also spares every write and a bulk load's
-- index build their share.
DROP INDEX IF EXISTS cases_reporter;
DROP INDEX IF EXISTS cases_micro_grid;
-- A bulk load that stopped before building its indexes left their old definitions to build.
DELETE FROM deferred_indexes WHERE name IN ('cases_reporter', 'cases_micro_grid');
CREATE INDEX cases_reporter ON cases(reporter_id, id) WHERE reporter_id IS NOT NULL;
CREATE INDEX cases_micro_grid ON cases(micro_grid_id, id) WHERE micro_grid_id IS NOT NULL;
