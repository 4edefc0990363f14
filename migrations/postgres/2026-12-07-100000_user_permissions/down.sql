DROP TRIGGER users_auth_update ON users;
CREATE TRIGGER users_auth_update
    AFTER UPDATE ON users
    FOR EACH ROW
    WHEN (OLD.id IS DISTINCT FROM NEW.id
       OR OLD.name IS DISTINCT FROM NEW.name
       OR OLD.email IS DISTINCT FROM NEW.email
       OR OLD.role IS DISTINCT FROM NEW.role
       OR OLD.enabled IS DISTINCT FROM NEW.enabled
       OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION users_notify_auth();
ALTER TABLE users DROP COLUMN permissions;
