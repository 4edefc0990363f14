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
