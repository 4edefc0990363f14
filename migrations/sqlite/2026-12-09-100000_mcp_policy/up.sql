-- Each key's MCP access policy (src/domain/mcp.rs), as compact JSON with its defaults left
-- out: `{}` is active, every instance, project and tool, which is what every key could reach
-- before the policy existed.
ALTER TABLE admin_api_keys ADD COLUMN mcp TEXT NOT NULL DEFAULT '{}';
ALTER TABLE project_api_keys ADD COLUMN mcp TEXT NOT NULL DEFAULT '{}';
-- Keys that hold every permission (the bootstrapped, all-powerful ones) also hold every MCP
-- permission, so someone can hand those out after the upgrade.
UPDATE admin_api_keys SET mcp = '{"permissions":["*"]}' WHERE permissions = '*';
