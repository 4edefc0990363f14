-- Name the hash of every key made or deleted, so that each replica keeps its set of live key
-- hashes (src/cache/keyset.rs) without reading the table: `live:<prefix>` when a hash appears
-- (insert, or a hash rewritten in place), `gone:<prefix>` when one disappears (delete, or the
-- old hash of a rewrite). The prefix is the first 16 hex digits of the stored SHA-256.
-- `created:<id>` is no longer sent: `live:` says the same and more.
CREATE OR REPLACE FUNCTION admin_api_keys_notify_auth() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('admin_api_keys_auth', 'reset:');
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.key_hash IS DISTINCT FROM NEW.key_hash) THEN
        PERFORM pg_notify('admin_api_keys_auth', 'gone:' || left(OLD.key_hash, 16));
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND OLD.key_hash IS DISTINCT FROM NEW.key_hash) THEN
        PERFORM pg_notify('admin_api_keys_auth', 'live:' || left(NEW.key_hash, 16));
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('admin_api_keys_auth', 'changed:' || OLD.id);
    END IF;
    RETURN NULL;
END;
$$;
