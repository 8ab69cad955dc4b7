-- Reference data, the current state of every case, and the event log.
CREATE TABLE jurisdictions (
    id BIGINT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    level TEXT NOT NULL,
    parent_id BIGINT REFERENCES jurisdictions(id)
);
CREATE INDEX jurisdictions_parent ON jurisdictions(parent_id);

CREATE TABLE departments (
    id BIGINT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    jurisdiction_id BIGINT NOT NULL REFERENCES jurisdictions(id)
);

CREATE TABLE categories (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE matters (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    category_code TEXT NOT NULL REFERENCES categories(code),
    default_priority TEXT NOT NULL,
    responsibilities TEXT NOT NULL,
    limits TEXT NOT NULL
);

CREATE TABLE users (
    id BIGINT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    jurisdiction_id BIGINT REFERENCES jurisdictions(id),
    department_id BIGINT REFERENCES departments(id)
);

CREATE TABLE cases (
    id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL,
    status TEXT NOT NULL,
    owner_id BIGINT NOT NULL REFERENCES jurisdictions(id),
    place_id BIGINT NOT NULL,
    matter_code TEXT,
    received_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX cases_owner_status ON cases(owner_id, status);
CREATE INDEX cases_received_at ON cases(received_at);

CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    case_id BIGINT NOT NULL REFERENCES cases(id),
    version BIGINT NOT NULL,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    payload TEXT NOT NULL,
    UNIQUE (case_id, version)
);

CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    case_id BIGINT NOT NULL REFERENCES cases(id),
    created_at BIGINT NOT NULL
);
