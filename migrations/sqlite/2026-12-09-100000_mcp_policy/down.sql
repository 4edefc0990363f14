ALTER TABLE project_api_keys DROP COLUMN mcp;
ALTER TABLE admin_api_keys DROP COLUMN mcp;
