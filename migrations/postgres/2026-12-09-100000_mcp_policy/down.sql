DROP TRIGGER project_api_keys_auth_update ON project_api_keys;
CREATE TRIGGER project_api_keys_auth_update
    AFTER UPDATE ON project_api_keys
    FOR EACH ROW
    WHEN (OLD.id IS DISTINCT FROM NEW.id
       OR OLD.project_id IS DISTINCT FROM NEW.project_id
       OR OLD.key_hash IS DISTINCT FROM NEW.key_hash
       OR OLD.owner_user_id IS DISTINCT FROM NEW.owner_user_id
       OR OLD.service_account_id IS DISTINCT FROM NEW.service_account_id
       OR OLD.scopes IS DISTINCT FROM NEW.scopes
       OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
       OR OLD.enabled IS DISTINCT FROM NEW.enabled)
    EXECUTE FUNCTION project_api_keys_notify_auth();

DROP TRIGGER admin_api_keys_auth_update ON admin_api_keys;
CREATE TRIGGER admin_api_keys_auth_update
    AFTER UPDATE ON admin_api_keys
    FOR EACH ROW
    WHEN (OLD.id IS DISTINCT FROM NEW.id
       OR OLD.key_hash IS DISTINCT FROM NEW.key_hash
       OR OLD.name IS DISTINCT FROM NEW.name
       OR OLD.owner_id IS DISTINCT FROM NEW.owner_id
       OR OLD.scopes IS DISTINCT FROM NEW.scopes
       OR OLD.permissions IS DISTINCT FROM NEW.permissions
       OR OLD.enabled IS DISTINCT FROM NEW.enabled
       OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
    EXECUTE FUNCTION admin_api_keys_notify_auth();

ALTER TABLE project_api_keys DROP COLUMN mcp;
ALTER TABLE admin_api_keys DROP COLUMN mcp;
