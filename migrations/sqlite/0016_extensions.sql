-- `jit extend`: a request made to lengthen a live grant names it (no
-- foreign key, as on PostgreSQL, where an import writes requests before grants).
ALTER TABLE requests ADD COLUMN extends_grant INTEGER;
