ALTER TABLE admin_api_keys DROP COLUMN permissions;
