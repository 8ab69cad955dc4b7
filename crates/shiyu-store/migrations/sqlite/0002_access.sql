-- Access: passwords, sessions, API tokens, the audit log, attachments; columns that let a case list be
-- scoped to a jurisdiction, a department or a reporter; citizens' tracking codes.
ALTER TABLE cases ADD COLUMN tracking_code TEXT;
ALTER TABLE cases ADD COLUMN reporter_id INTEGER;
ALTER TABLE cases ADD COLUMN county_id INTEGER;
ALTER TABLE cases ADD COLUMN township_id INTEGER;
ALTER TABLE cases ADD COLUMN community_id INTEGER;
ALTER TABLE cases ADD COLUMN grid_id INTEGER;
ALTER TABLE cases ADD COLUMN micro_grid_id INTEGER;
CREATE UNIQUE INDEX cases_tracking_code ON cases(tracking_code);
CREATE INDEX cases_reporter ON cases(reporter_id, id);
CREATE INDEX cases_county ON cases(county_id, id);
CREATE INDEX cases_township ON cases(township_id, id);
CREATE INDEX cases_community ON cases(community_id, id);
CREATE INDEX cases_grid ON cases(grid_id, id);
CREATE INDEX cases_micro_grid ON cases(micro_grid_id, id);

CREATE TABLE case_departments (
    case_id INTEGER NOT NULL REFERENCES cases(id),
    department_id INTEGER NOT NULL,
    PRIMARY KEY (case_id, department_id)
);
CREATE INDEX case_departments_department ON case_departments(department_id, case_id);

ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until INTEGER;

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    user_id INTEGER,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    address TEXT,
    detail TEXT
);

CREATE TABLE attachments (
    sha256 TEXT PRIMARY KEY,
    mime TEXT NOT NULL,
    size INTEGER NOT NULL,
    name TEXT NOT NULL,
    uploaded_by INTEGER,
    created_at INTEGER NOT NULL,
    -- SQLite keeps the bytes as files in the data folder; PostgreSQL keeps them here.
    content BLOB
);
