-- Break-glass: a request granted at once under a `break_glass = true` rule,
-- reviewed afterwards by the rule's approvers (`jit review`), and reminded
-- of daily until it is.
ALTER TABLE requests ADD COLUMN break_glass INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN reviewed_by TEXT;
ALTER TABLE requests ADD COLUMN reviewed_at INTEGER;
ALTER TABLE requests ADD COLUMN review TEXT;
ALTER TABLE requests ADD COLUMN review_comment TEXT;
ALTER TABLE requests ADD COLUMN reminded_at INTEGER;
CREATE INDEX requests_unreviewed ON requests (id) WHERE break_glass = 1 AND reviewed_at IS NULL;
