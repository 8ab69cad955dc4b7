-- Deadlines that enforce themselves: each open case's next alarm (so that start-up reads only the open
-- cases, through a small index), named settings (escalation rules, the working calendar), the positions of
-- the log's followers, in-app notifications, and outgoing webhooks with their deliveries.
ALTER TABLE cases ADD COLUMN alarm_at BIGINT;
CREATE INDEX cases_alarm ON cases(alarm_at, id) WHERE alarm_at IS NOT NULL;

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE followers (
    name TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    seq BIGINT NOT NULL,
    case_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    urgent BOOLEAN NOT NULL,
    at BIGINT NOT NULL,
    read_at BIGINT,
    UNIQUE (user_id, seq)
);
CREATE INDEX notifications_user ON notifications(user_id, id);
CREATE INDEX notifications_unread ON notifications(user_id) WHERE read_at IS NULL;

CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    department_id BIGINT NOT NULL REFERENCES departments(id),
    url TEXT NOT NULL,
    secret_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);
CREATE INDEX webhooks_department ON webhooks(department_id);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    webhook_id BIGINT NOT NULL REFERENCES webhooks(id),
    seq BIGINT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    last_error TEXT,
    done_at BIGINT,
    UNIQUE (webhook_id, seq)
);
CREATE INDEX deliveries_due ON deliveries(next_at) WHERE state = 'pending';
