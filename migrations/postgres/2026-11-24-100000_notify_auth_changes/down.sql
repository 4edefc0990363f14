DROP TRIGGER admin_api_keys_auth_update ON admin_api_keys;
DROP TRIGGER admin_api_keys_auth_truncate ON admin_api_keys;
DROP TRIGGER admin_api_keys_auth_insert_delete ON admin_api_keys;
DROP FUNCTION admin_api_keys_notify_auth();
