-- Outgoing webhooks: the dead-letter list is read by id among far more delivered rows, so it gets an index of
-- its own, small because few deliveries die.
CREATE INDEX deliveries_dead ON deliveries(id) WHERE state = 'dead';
