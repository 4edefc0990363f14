-- A key's revision: moves whenever a change touches anything a key object shows, never for
-- last_used_at alone (every usage flush writes it). A list page reads each key's id,
-- revision and last_used_at, and takes the rest from the view cache when the cached view
-- has the same revision (src/cache/views.rs), instead of reading and decoding every column.
-- The trigger fires only for updates that name one of these columns: a column added to
-- admin_api_keys later that a key object shows must be added to the list.
ALTER TABLE admin_api_keys ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION admin_api_keys_revise() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    unchanged admin_api_keys;
BEGIN
    -- The old row with what does not count taken from the new one: equal means nothing
    -- that counts changed.
    unchanged := OLD;
    unchanged.last_used_at := NEW.last_used_at;
    unchanged.revision := NEW.revision;
    IF unchanged IS DISTINCT FROM NEW THEN
        NEW.revision := OLD.revision + 1;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER admin_api_keys_revise
    BEFORE UPDATE OF id, name, key_hash, redacted_value, owner_id, created_at, expires_at,
        scopes, enabled, rotated_to, permissions, mcp
    ON admin_api_keys
    FOR EACH ROW EXECUTE FUNCTION admin_api_keys_revise();
