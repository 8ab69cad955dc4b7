-- When each open case's running stage is due (NULL once it ended, and while it is suspended), so that a work
-- list can put the most urgent first through a small index of the cases whose clock runs. The store fills it
-- for the cases already open when this migration runs (`fill_due_at`).
ALTER TABLE cases ADD COLUMN due_at BIGINT;
CREATE INDEX cases_due ON cases(due_at, id) WHERE due_at IS NOT NULL;
