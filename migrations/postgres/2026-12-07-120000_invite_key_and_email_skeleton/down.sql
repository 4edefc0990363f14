DROP INDEX invites_email_skeleton;
ALTER TABLE invites DROP COLUMN email_skeleton;
DROP INDEX users_email_skeleton;
ALTER TABLE users DROP COLUMN email_skeleton;
DROP INDEX invites_invited_by_key;
ALTER TABLE invites DROP COLUMN invited_by_key;
