-- Users become members that can be listed, changed, disabled and deleted; invites bring new
-- ones in. Emails are stored lower-cased (compared case-insensitively everywhere).
ALTER TABLE users ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT TRUE;
UPDATE users SET email = lower(email) WHERE email IS NOT NULL;
CREATE INDEX users_created_at_id ON users (created_at, id);
CREATE INDEX users_email ON users (email);

-- Keys that held every scope before users existed were all-powerful, and stay so: they gain
-- the two new user scopes. Keys with fewer scopes keep exactly the ones they had.
UPDATE admin_api_keys SET scopes = 'admin_api_keys.read admin_api_keys.write audit_logs.read users.read users.write'
 WHERE scopes = 'admin_api_keys.read admin_api_keys.write audit_logs.read';

CREATE TABLE invites (
    id          TEXT PRIMARY KEY NOT NULL,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL,
    -- Lowercase hex SHA-256 of the accept token; the token itself is never stored.
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    accepted_at BIGINT,
    -- The user the invite became, once accepted.
    user_id     TEXT,
    -- The member whose key made the invite: acceptance needs them still enabled and an owner,
    -- and deleting them withdraws their pending invites.
    invited_by  TEXT
);
CREATE INDEX invites_created_at_id ON invites (created_at, id);
CREATE INDEX invites_email ON invites (email);
CREATE INDEX invites_invited_by ON invites (invited_by);

-- The user behind each audit entry's actor (the key's owner, or the session's user), for the
-- `owner_id` filter.
ALTER TABLE audit_logs ADD COLUMN actor_user_id TEXT;
UPDATE audit_logs SET actor_user_id = coalesce(
    json_extract(actor, '$.api_key.user.id'), json_extract(actor, '$.session.user.id'));
CREATE INDEX audit_logs_actor_user_id ON audit_logs (actor_user_id);
