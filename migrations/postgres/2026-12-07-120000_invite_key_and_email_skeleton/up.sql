-- The key that made an invite: deleting or disabling that key withdraws the invites it made
-- that are still pending, and an invite is accepted only while its key is live. Invites made
-- before this column have none recorded: they stay bound only to their maker (`invited_by`),
-- as before, and are withdrawn when that member is deleted.
ALTER TABLE invites ADD COLUMN invited_by_key TEXT COLLATE "C";
CREATE INDEX invites_invited_by_key ON invites (invited_by_key);

-- The confusable skeleton (Unicode TS #39) of each email, which the "already a member" and
-- "already invited" checks compare, so look-alike addresses are one address. SQL cannot
-- compute it (it needs Unicode's confusables table): rows written before this migration are
-- filled in by the service, under the membership lock, before its first comparison
-- (src/services/emails.rs).
ALTER TABLE users ADD COLUMN email_skeleton TEXT;
CREATE INDEX users_email_skeleton ON users (email_skeleton);
ALTER TABLE invites ADD COLUMN email_skeleton TEXT;
CREATE INDEX invites_email_skeleton ON invites (email_skeleton);
