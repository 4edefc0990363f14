-- A permission ceiling per member: their keys' permissions count downstream only within it,
-- as their role caps their keys' scopes. Owners hold every permission (`*`). Readers keep
-- exactly what their keys hold today (the union of their keys' permissions, which an owner
-- granted), so the upgrade changes no key's effective access; new readers start with none.
-- The list may come out unsorted or repeated here; it is read as a set.
ALTER TABLE users ADD COLUMN permissions TEXT NOT NULL DEFAULT '';
UPDATE users SET permissions = '*' WHERE role = 'owner';
UPDATE users
   SET permissions = COALESCE(
       (SELECT group_concat(k.permissions, ' ')
          FROM admin_api_keys k
         WHERE k.owner_id = users.id AND k.permissions <> ''), '')
 WHERE role <> 'owner';
