-- jit broker schema (SQLite). Times are unix milliseconds (UTC) except the
-- audit log's `at`, which is the exact RFC 3339 text that was hashed.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    groups_json TEXT NOT NULL DEFAULT '[]',
    is_admin    INTEGER NOT NULL DEFAULT 0,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE requests (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    requester          TEXT NOT NULL,
    repo               TEXT NOT NULL,
    level              TEXT NOT NULL CHECK (level IN ('read', 'write', 'admin')),
    duration_secs      INTEGER NOT NULL CHECK (duration_secs > 0),
    reason             TEXT,
    rule               TEXT NOT NULL,
    approvals_required INTEGER NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'canceled', 'expired')),
    created_at         INTEGER NOT NULL,
    decided_at         INTEGER,
    decided_by         TEXT,
    decision_note      TEXT
);
CREATE INDEX requests_status ON requests (status, created_at);
CREATE INDEX requests_requester ON requests (requester);

CREATE TABLE approvals (
    request_id INTEGER NOT NULL REFERENCES requests (id),
    approver   TEXT NOT NULL,
    comment    TEXT,
    at         INTEGER NOT NULL,
    PRIMARY KEY (request_id, approver)
);

CREATE TABLE grants (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL UNIQUE REFERENCES requests (id),
    user       TEXT NOT NULL,
    repo       TEXT NOT NULL,
    level      TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    revoked_by TEXT,
    -- set once the provider has been told the grant ended (the reaper's mark)
    ended_at   INTEGER
);
CREATE INDEX grants_user ON grants (user);
CREATE INDEX grants_open ON grants (ended_at, expires_at);

CREATE TABLE audit_events (
    seq        INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    request_id INTEGER,
    grant_id   INTEGER,
    repo       TEXT,
    level      TEXT,
    detail     TEXT,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);

-- The log is append-only: the broker never updates or deletes an event.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;

-- Gateway credentials: hashes only; the password lives in the grantee's keychain.
CREATE TABLE credentials (
    hash       TEXT PRIMARY KEY,
    grant_id   INTEGER NOT NULL REFERENCES grants (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX credentials_grant ON credentials (grant_id);
