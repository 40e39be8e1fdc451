-- The brokers on this database, as each last said it was alive (every few
-- seconds, from its reaper): `jit admin replicas` lists them. SQLite has one.
CREATE TABLE replicas (
    id         TEXT PRIMARY KEY,
    version    TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL
);
