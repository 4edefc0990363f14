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
    id          TEXT COLLATE "C" PRIMARY KEY,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL,
    -- Lowercase hex SHA-256 of the accept token; the token itself is never stored.
    token_hash  TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    accepted_at BIGINT,
    -- The user the invite became, once accepted.
    user_id     TEXT COLLATE "C",
    -- The member whose key made the invite: acceptance needs them still enabled and an owner,
    -- and deleting them withdraws their pending invites.
    invited_by  TEXT COLLATE "C"
);
CREATE INDEX invites_created_at_id ON invites (created_at, id);
CREATE INDEX invites_email ON invites (email);
CREATE INDEX invites_invited_by ON invites (invited_by);

-- The user behind each audit entry's actor (the key's owner, or the session's user), for the
-- `owner_id` filter.
ALTER TABLE audit_logs ADD COLUMN actor_user_id TEXT COLLATE "C";
UPDATE audit_logs SET actor_user_id = coalesce(
    actor::jsonb -> 'api_key' -> 'user' ->> 'id', actor::jsonb -> 'session' -> 'user' ->> 'id');
CREATE INDEX audit_logs_actor_user_id ON audit_logs (actor_user_id);

-- A user's name, email, role or enabled state is part of every cached auth record of their
-- keys: tell every replica (see src/cache/invalidation.rs). Deleting a user deletes their
-- keys first, which announce themselves.
CREATE FUNCTION users_notify_auth() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('admin_api_keys_auth', 'reset:');
        RETURN NULL;
    END IF;
    PERFORM pg_notify('admin_api_keys_auth', 'user:' || OLD.id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_auth_delete
    AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_notify_auth();

CREATE TRIGGER users_auth_truncate
    AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION users_notify_auth();

CREATE TRIGGER users_auth_update
    AFTER UPDATE ON users
    FOR EACH ROW
    WHEN (OLD.id IS DISTINCT FROM NEW.id
       OR OLD.name IS DISTINCT FROM NEW.name
       OR OLD.email IS DISTINCT FROM NEW.email
       OR OLD.role IS DISTINCT FROM NEW.role
       OR OLD.enabled IS DISTINCT FROM NEW.enabled
       OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION users_notify_auth();
