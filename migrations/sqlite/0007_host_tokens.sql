-- Credentials minted at a git host (GitHub installation tokens): what
-- revoking each needs, sealed with the broker's key, erased once the host
-- revoked it. A grant is marked ended only when none is left.
CREATE TABLE host_tokens (
    id INTEGER PRIMARY KEY,
    grant_id INTEGER NOT NULL REFERENCES grants(id),
    sealed BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX host_tokens_by_grant ON host_tokens(grant_id);

-- The reaper's attempts to end a grant at its host: failures in a row, the
-- last one's message, and when to try again.
ALTER TABLE grants ADD COLUMN end_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE grants ADD COLUMN end_error TEXT;
ALTER TABLE grants ADD COLUMN end_retry_at INTEGER;
