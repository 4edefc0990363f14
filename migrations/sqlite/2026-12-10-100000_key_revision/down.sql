DROP TRIGGER admin_api_keys_revise;
ALTER TABLE admin_api_keys DROP COLUMN revision;
