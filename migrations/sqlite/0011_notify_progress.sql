-- Notifications: the audit log is the outbox (an event commits with the change
-- it describes); each destination keeps how far along it is delivered, and
-- the failures of the event it is stuck on.
CREATE TABLE notify_progress (
    destination      TEXT PRIMARY KEY,
    -- every event up to here was delivered (or given up on, counted below)
    delivered_seq    INTEGER NOT NULL,
    -- failed attempts at the next event, the first of them, and the last error
    failures         INTEGER NOT NULL DEFAULT 0,
    first_failed_at  INTEGER,
    last_error       TEXT,
    next_attempt_at  INTEGER,
    -- events given up on after a day of failures, or refused by the receiver (4xx)
    given_up         INTEGER NOT NULL DEFAULT 0
);
