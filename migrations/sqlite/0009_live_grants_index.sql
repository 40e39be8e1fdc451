-- A user's live grants are looked up on every request they make (does a live
-- grant already cover it? which does it supersede?); their revoked and
-- superseded grants, which pile up, stay out of the way.
CREATE INDEX grants_live_by_user ON grants (user_id, expires_at) WHERE revoked_at IS NULL;
