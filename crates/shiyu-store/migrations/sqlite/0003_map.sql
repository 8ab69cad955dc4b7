-- The map: the outline of a jurisdiction (county boundary, township, community, grid, micro-grid) as a
-- GeoJSON geometry. Lookups run on an in-memory index built from these rows, not in SQL.
CREATE TABLE shapes (
    jurisdiction_id INTEGER PRIMARY KEY REFERENCES jurisdictions(id),
    geometry TEXT NOT NULL
);
