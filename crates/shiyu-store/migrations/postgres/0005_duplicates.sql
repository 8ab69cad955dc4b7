-- Per matter: how near in space and time two reports must be to be compared as duplicates (JSON
-- {"radius_m", "window_hours"}; NULL for the platform's default).
ALTER TABLE matters ADD COLUMN duplicate_rule TEXT;
