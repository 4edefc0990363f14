-- Two new admin scopes, `projects.read` and `projects.write`. A key that held every scope
-- before them (the bootstrapped, all-powerful keys, stored as the full sorted list) keeps
-- holding every scope: it gains both. A key with fewer scopes keeps exactly what it had, so
-- no narrowed key is widened by the upgrade. (Readers' keys are capped by the reader role,
-- whose ceiling now includes `projects.read`; their stored scopes are unchanged.)
UPDATE admin_api_keys
   SET scopes = 'admin_api_keys.read admin_api_keys.write audit_logs.read keys.introspect projects.read projects.write users.read users.write'
 WHERE scopes = 'admin_api_keys.read admin_api_keys.write audit_logs.read keys.introspect users.read users.write';
