-- Users get stable identities: requests and grants point at a user's id, a
-- removed user is kept (soft-deleted, without a token) so history stays
-- whole, and a name that is reused later starts with nothing of the old one's.

CREATE TABLE users_v2 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    groups_json TEXT NOT NULL DEFAULT '[]',
    is_admin    INTEGER NOT NULL DEFAULT 0,
    token_hash  TEXT,              -- NULL once removed
    created_at  INTEGER NOT NULL,
    -- when the user was removed; such a row never authenticates again
    removed_at  INTEGER
);
INSERT INTO users_v2 (id, name, groups_json, is_admin, token_hash, created_at)
    SELECT id, name, groups_json, is_admin, token_hash, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_v2 RENAME TO users;
CREATE UNIQUE INDEX users_active_name ON users (name) WHERE removed_at IS NULL;
CREATE UNIQUE INDEX users_token ON users (token_hash) WHERE token_hash IS NOT NULL;

ALTER TABLE requests ADD COLUMN requester_id INTEGER;
UPDATE requests SET requester_id = (SELECT id FROM users WHERE users.name = requests.requester);
CREATE INDEX requests_requester_id ON requests (requester_id);

ALTER TABLE grants ADD COLUMN user_id INTEGER;
UPDATE grants SET user_id = (SELECT id FROM users WHERE users.name = grants.user);
CREATE INDEX grants_user_id ON grants (user_id);
