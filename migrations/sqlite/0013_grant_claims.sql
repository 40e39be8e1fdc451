-- The reaper's claim on a grant while it calls the grant's host (to give it
-- its access or to end it): which broker holds it, and until when. Brokers
-- sharing one database (PostgreSQL) each skip a grant another holds; a broker
-- that dies mid-call leaves a claim that runs out, and another finishes.
ALTER TABLE grants ADD COLUMN claimed_by TEXT;
ALTER TABLE grants ADD COLUMN claimed_until INTEGER;
