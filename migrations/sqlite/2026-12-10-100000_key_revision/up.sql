-- A key's revision: moves whenever a change touches anything a key object shows, never for
-- last_used_at alone (every usage flush writes it). A list page reads each key's id,
-- revision and last_used_at, and takes the rest from the view cache when the cached view
-- has the same revision (src/cache/views.rs), instead of reading and decoding every column.
-- The trigger fires only for updates that name one of these columns: a column added to
-- admin_api_keys later that a key object shows must be added to both lists.
ALTER TABLE admin_api_keys ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER admin_api_keys_revise
    AFTER UPDATE OF id, name, key_hash, redacted_value, owner_id, created_at, expires_at,
        scopes, enabled, rotated_to, permissions, mcp
    ON admin_api_keys
    FOR EACH ROW
    WHEN NEW.id IS NOT OLD.id
      OR NEW.name IS NOT OLD.name
      OR NEW.key_hash IS NOT OLD.key_hash
      OR NEW.redacted_value IS NOT OLD.redacted_value
      OR NEW.owner_id IS NOT OLD.owner_id
      OR NEW.created_at IS NOT OLD.created_at
      OR NEW.expires_at IS NOT OLD.expires_at
      OR NEW.scopes IS NOT OLD.scopes
      OR NEW.enabled IS NOT OLD.enabled
      OR NEW.rotated_to IS NOT OLD.rotated_to
      OR NEW.permissions IS NOT OLD.permissions
      OR NEW.mcp IS NOT OLD.mcp
BEGIN
    UPDATE admin_api_keys SET revision = OLD.revision + 1 WHERE id = NEW.id;
END;
