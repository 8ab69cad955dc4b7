-- Trained models (the matter classifier), so that every node serves the same one.
CREATE TABLE models (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    trained_at BIGINT NOT NULL
);
