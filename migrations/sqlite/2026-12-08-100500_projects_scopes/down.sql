-- Older versions ignore scope names they do not know; drop the two anyway so an all-scope
-- key reads as exactly what that version calls every scope.
UPDATE admin_api_keys
   SET scopes = trim(replace(replace(scopes, 'projects.read', ''), 'projects.write', ''))
 WHERE scopes LIKE '%projects.%';
UPDATE admin_api_keys SET scopes = replace(replace(scopes, '   ', ' '), '  ', ' ');
