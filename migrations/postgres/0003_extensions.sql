-- `jit extend`: a request made to lengthen a live grant names it (no
-- foreign key: `--migrate-from-sqlite` writes requests before grants).
ALTER TABLE requests ADD COLUMN extends_grant BIGINT;
