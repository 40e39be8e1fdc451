-- A grant remembers the rule it was granted under, so rules that restrict
-- where a grant is used from (`from`) are checked on every git request
-- without another read.
ALTER TABLE grants ADD COLUMN rule TEXT;
UPDATE grants SET rule = (SELECT rule FROM requests WHERE requests.id = grants.request_id);
