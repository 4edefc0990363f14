CREATE OR REPLACE FUNCTION admin_api_keys_notify_auth() RETURNS trigger
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
