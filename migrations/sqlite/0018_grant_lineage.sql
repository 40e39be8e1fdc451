-- Grant lineage: a grant that supersedes another joins its lineage (the id
-- of the lineage's first grant; NULL on that first grant itself), and a
-- gateway credential answers to the newest grant of its minting grant's
-- lineage. Superseding is then one row written, where it used to re-point
-- every live credential of the old grant (hundreds for a busy developer).
ALTER TABLE grants ADD COLUMN lineage INTEGER;
CREATE INDEX grants_lineage ON grants (lineage) WHERE lineage IS NOT NULL;
