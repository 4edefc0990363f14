ALTER TABLE admin_api_keys DROP COLUMN enabled;
ALTER TABLE admin_api_keys DROP COLUMN scopes;
