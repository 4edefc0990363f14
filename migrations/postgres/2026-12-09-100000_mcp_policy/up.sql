-- Each key's MCP access policy (src/domain/mcp.rs), as compact JSON with its defaults left
-- out: `{}` is active, every instance, project and tool, which is what every key could reach
-- before the policy existed.
ALTER TABLE admin_api_keys ADD COLUMN mcp TEXT NOT NULL DEFAULT '{}';
ALTER TABLE project_api_keys ADD COLUMN mcp TEXT NOT NULL DEFAULT '{}';
-- Keys that hold every permission (the bootstrapped, all-powerful ones) also hold every MCP
-- permission, so someone can hand those out after the upgrade.
UPDATE admin_api_keys SET mcp = '{"permissions":["*"]}' WHERE permissions = '*';

-- A change of the policy (a toggle among them) matters to every replica's cached keys: the
-- update triggers announce it as they announce a change of scopes.
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
       OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
       OR OLD.mcp IS DISTINCT FROM NEW.mcp)
    EXECUTE FUNCTION admin_api_keys_notify_auth();

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
       OR OLD.enabled IS DISTINCT FROM NEW.enabled
       OR OLD.mcp IS DISTINCT FROM NEW.mcp)
    EXECUTE FUNCTION project_api_keys_notify_auth();
