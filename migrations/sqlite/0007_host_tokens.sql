-- What a grant holds at a git host: a credential minted there (a GitHub
-- installation token, a GitLab project access token) or a membership jit
-- added (a GitHub team, a GitLab project). Each row keeps what taking it away
-- needs, sealed with the broker's key, and is erased once the host agreed.
-- A grant is marked ended only when none is left. `shared_key` names a
-- membership: two grants of one person may hold the same one, and it is
-- removed at the host only when the last of them ends.
CREATE TABLE host_tokens (
    id INTEGER PRIMARY KEY,
    grant_id INTEGER NOT NULL REFERENCES grants(id),
    sealed BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    shared_key TEXT
);
CREATE INDEX host_tokens_by_grant ON host_tokens(grant_id);
CREATE INDEX host_tokens_by_key ON host_tokens(shared_key) WHERE shared_key IS NOT NULL;

-- The reaper's attempts to give a grant its access at the host (memberships)
-- and to end it there: failures in a row, the last one's message, and when
-- to try again.
ALTER TABLE grants ADD COLUMN host_started_at INTEGER;
ALTER TABLE grants ADD COLUMN start_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE grants ADD COLUMN start_retry_at INTEGER;
ALTER TABLE grants ADD COLUMN end_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE grants ADD COLUMN end_error TEXT;
ALTER TABLE grants ADD COLUMN end_retry_at INTEGER;
