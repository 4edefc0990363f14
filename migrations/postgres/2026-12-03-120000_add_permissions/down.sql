DROP TRIGGER admin_api_keys_auth_update ON admin_api_keys;
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
ALTER TABLE admin_api_keys DROP COLUMN permissions;
