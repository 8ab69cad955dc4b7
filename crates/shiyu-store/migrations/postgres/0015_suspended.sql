-- The cases whose clock is stopped (挂起): open, yet with no running due time. Few at any time, so that the
-- list of them to resume reads a small index instead of the whole table. The states listed are those
-- before the end (`Status::is_active`); the store's query names the same ones (`clock=suspended`).
CREATE INDEX cases_suspended ON cases(id)
    WHERE due_at IS NULL AND status IN ('received', 'registered', 'dispatched', 'handling', 'handled', 'verified');
