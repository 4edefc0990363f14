ALTER TABLE users DROP COLUMN permissions;
