-- Tell every replica's auth cache about changes that matter to authentication (see
-- src/invalidation.rs). NOTIFY is delivered on commit, whoever made the change.
CREATE FUNCTION admin_api_keys_notify_auth() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('admin_api_keys_auth', 'reset:');
        RETURN NULL;
    END IF;
    -- A new hash (an inserted key, or one rewritten in place) may sit in a replica's cache
    -- of unknown hashes.
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND OLD.key_hash IS DISTINCT FROM NEW.key_hash) THEN
        PERFORM pg_notify('admin_api_keys_auth', 'created:' || NEW.id);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('admin_api_keys_auth', 'changed:' || OLD.id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER admin_api_keys_auth_insert_delete
    AFTER INSERT OR DELETE ON admin_api_keys
    FOR EACH ROW EXECUTE FUNCTION admin_api_keys_notify_auth();

CREATE TRIGGER admin_api_keys_auth_truncate
    AFTER TRUNCATE ON admin_api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION admin_api_keys_notify_auth();

-- last_used_at is written by every usage flush: announcing it would defeat the cache.
CREATE TRIGGER admin_api_keys_auth_update
    AFTER UPDATE ON admin_api_keys
    FOR EACH ROW
    WHEN (OLD.id IS DISTINCT FROM NEW.id
       OR OLD.key_hash IS DISTINCT FROM NEW.key_hash
       OR OLD.name IS DISTINCT FROM NEW.name
       OR OLD.owner_id IS DISTINCT FROM NEW.owner_id
       OR OLD.scopes IS DISTINCT FROM NEW.scopes
       OR OLD.enabled IS DISTINCT FROM NEW.enabled
       OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
    EXECUTE FUNCTION admin_api_keys_notify_auth();
