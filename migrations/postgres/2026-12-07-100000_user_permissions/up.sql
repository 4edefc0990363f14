-- A permission ceiling per member: their keys' permissions count downstream only within it,
-- as their role caps their keys' scopes. Owners hold every permission (`*`). Readers keep
-- exactly what their keys hold today (the union of their keys' permissions, which an owner
-- granted), so the upgrade changes no key's effective access; new readers start with none.
-- The list may come out unsorted or repeated here; it is read as a set.
ALTER TABLE users ADD COLUMN permissions TEXT NOT NULL DEFAULT '';
UPDATE users SET permissions = '*' WHERE role = 'owner';
UPDATE users
   SET permissions = COALESCE(
       (SELECT string_agg(k.permissions, ' ')
          FROM admin_api_keys k
         WHERE k.owner_id = users.id AND k.permissions <> ''), '')
 WHERE role <> 'owner';

-- A change of the ceiling matters to every replica's auth cache, as a change of role does.
DROP TRIGGER users_auth_update ON users;
CREATE TRIGGER users_auth_update
    AFTER UPDATE ON users
    FOR EACH ROW
    WHEN (OLD.id IS DISTINCT FROM NEW.id
       OR OLD.name IS DISTINCT FROM NEW.name
       OR OLD.email IS DISTINCT FROM NEW.email
       OR OLD.role IS DISTINCT FROM NEW.role
       OR OLD.permissions IS DISTINCT FROM NEW.permissions
       OR OLD.enabled IS DISTINCT FROM NEW.enabled
       OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION users_notify_auth();
