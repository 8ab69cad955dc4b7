-- Two accounts whose names differ only in letter case would be taken for one. Usernames are ASCII, so lower()
-- means the same on both backends; the index also refuses the second of two such accounts made at once.
CREATE UNIQUE INDEX users_username_any_case ON users (lower(username));
