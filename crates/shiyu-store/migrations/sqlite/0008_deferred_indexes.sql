-- Indexes of the case tables dropped for a large bulk load (`Store::defer_indexes`), with the statement that
-- builds each again. A row here means the index is missing: the store builds it when the load ends, or when
-- it is next opened if the load never ended.
CREATE TABLE deferred_indexes (
    name TEXT PRIMARY KEY,
    sql TEXT NOT NULL
);
