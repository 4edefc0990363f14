-- Permissions: strings for the operator's own services, sorted and space-separated.
-- Keys that hold every scope (the bootstrapped, all-powerful ones) get `*`, so someone can
-- grant permissions after the upgrade; every other key starts with none.
ALTER TABLE admin_api_keys ADD COLUMN permissions TEXT NOT NULL DEFAULT '';
UPDATE admin_api_keys SET permissions = '*'
 WHERE scopes = 'admin_api_keys.read admin_api_keys.write audit_logs.read users.read users.write';
-- The same keys gain the new `keys.introspect` scope (they held every scope before it).
UPDATE admin_api_keys
   SET scopes = 'admin_api_keys.read admin_api_keys.write audit_logs.read keys.introspect users.read users.write'
 WHERE scopes = 'admin_api_keys.read admin_api_keys.write audit_logs.read users.read users.write';

-- A change of permissions matters to every replica's auth cache (forward auth checks them).
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
