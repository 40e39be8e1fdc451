-- People the identity provider signs in: the user row says which IdP vouches
-- for them and under which subject (a local user has neither), and each
-- sign-in is a broker session with its own token (a hash, like every token).
ALTER TABLE users ADD COLUMN issuer TEXT;
ALTER TABLE users ADD COLUMN subject TEXT;

CREATE TABLE sessions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        INTEGER NOT NULL REFERENCES users (id),
    token_hash     TEXT NOT NULL UNIQUE,
    -- the IdP's refresh token, sealed with the broker's sealing key (server::sealing)
    refresh_sealed BLOB,
    created_at     INTEGER NOT NULL,
    -- session_max after sign-in: then the person signs in again
    ends_at        INTEGER NOT NULL,
    -- when the broker next asks the IdP whether the person is still active
    next_check_at  INTEGER NOT NULL,
    ended_at       INTEGER,
    end_reason     TEXT
);
CREATE INDEX sessions_due ON sessions (next_check_at) WHERE ended_at IS NULL;
CREATE INDEX sessions_user ON sessions (user_id) WHERE ended_at IS NULL;
