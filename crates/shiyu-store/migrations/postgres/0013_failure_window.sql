-- When the account's current run of failed sign-ins began: failures older than the lock's length no longer
-- count, so that the account-wide lock needs many failures close together (from many addresses, since one
-- address is stopped sooner) rather than a slow trickle over days.
ALTER TABLE users ADD COLUMN failed_since BIGINT;
