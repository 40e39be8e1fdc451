-- Grants scoped to refs: what a request asked for (NULL: every ref the rule
-- allows) and what its grant may update (NULL: every ref), one pattern a line.
ALTER TABLE requests ADD COLUMN refs TEXT;
ALTER TABLE grants ADD COLUMN refs TEXT;
