-- A grant's report (`jit audit grant ID`) reads its events by grant and by
-- the request it came from, without walking the whole log.
CREATE INDEX audit_events_by_grant ON audit_events (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX audit_events_by_request ON audit_events (request_id) WHERE request_id IS NOT NULL;
