-- Grants and requests are found by the user's id since 0002; the indexes
-- by name were left behind, and every new grant and request still wrote
-- them (a page more in each decision's commit). PostgreSQL never had them.
DROP INDEX IF EXISTS grants_user;
DROP INDEX IF EXISTS requests_requester;
