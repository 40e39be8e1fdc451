-- Where a person is mailed (e-mail notifications to a rule's approvers): from
-- the identity provider's `email` claim, or given with `jit admin user add --email`.
ALTER TABLE users ADD COLUMN email TEXT;
