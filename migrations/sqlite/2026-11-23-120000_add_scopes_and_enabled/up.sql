-- Scopes are a space-separated, sorted list of scope names (as in OAuth's `scope`).
-- Keys made before scopes existed were all-powerful, so they keep every scope.
ALTER TABLE admin_api_keys
    ADD COLUMN scopes TEXT NOT NULL DEFAULT 'admin_api_keys.read admin_api_keys.write audit_logs.read';
ALTER TABLE admin_api_keys ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT TRUE;
