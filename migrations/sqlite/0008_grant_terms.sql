-- What a request was decided under, kept on it and on its grant so a later
-- policy change (a rule renamed, removed or reordered) never widens a live
-- grant: the networks it may be used from (one per line; '' anywhere) and
-- whether it may delete refs below admin. NULL: decided before this was kept.
ALTER TABLE requests ADD COLUMN from_networks TEXT;
ALTER TABLE requests ADD COLUMN allow_deletes INTEGER;
ALTER TABLE grants ADD COLUMN from_networks TEXT;
ALTER TABLE grants ADD COLUMN allow_deletes INTEGER;
