-- What the database knows about itself: its identity (also written to a
-- marker file beside it), so a missing, emptied or swapped database file is
-- noticed at start-up instead of starting a fresh, empty broker.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
