-- Tell every replica about changes to project keys and to who may use them, on the channel
-- the admin keys use (src/cache/invalidation.rs):
-- - project_api_keys: `live:<hash prefix>` / `gone:<hash prefix>` as admin keys (the set of
--   live hashes holds both tables), `changed:<key id>` when a key is deleted or anything but
--   `last_used_at` changes, `reset:` on truncate.
-- - projects (archived, or any other change), project_users (a member added, changed or
--   removed) and service_accounts (changed or deleted): `project:<project id>`, which drops
--   the cached project keys of that project.

CREATE FUNCTION project_api_keys_notify_auth() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('admin_api_keys_auth', 'reset:');
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.key_hash IS DISTINCT FROM NEW.key_hash) THEN
        PERFORM pg_notify('admin_api_keys_auth', 'gone:' || left(OLD.key_hash, 16));
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND OLD.key_hash IS DISTINCT FROM NEW.key_hash) THEN
        PERFORM pg_notify('admin_api_keys_auth', 'live:' || left(NEW.key_hash, 16));
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('admin_api_keys_auth', 'changed:' || OLD.id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER project_api_keys_auth_insert_delete
    AFTER INSERT OR DELETE ON project_api_keys
    FOR EACH ROW EXECUTE FUNCTION project_api_keys_notify_auth();

CREATE TRIGGER project_api_keys_auth_truncate
    AFTER TRUNCATE ON project_api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION project_api_keys_notify_auth();

-- A usage flush (only `last_used_at` moves) stays silent.
CREATE TRIGGER project_api_keys_auth_update
    AFTER UPDATE ON project_api_keys
    FOR EACH ROW
    WHEN (OLD.id IS DISTINCT FROM NEW.id
       OR OLD.project_id IS DISTINCT FROM NEW.project_id
       OR OLD.key_hash IS DISTINCT FROM NEW.key_hash
       OR OLD.owner_user_id IS DISTINCT FROM NEW.owner_user_id
       OR OLD.service_account_id IS DISTINCT FROM NEW.service_account_id
       OR OLD.scopes IS DISTINCT FROM NEW.scopes
       OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
       OR OLD.enabled IS DISTINCT FROM NEW.enabled)
    EXECUTE FUNCTION project_api_keys_notify_auth();

-- For projects (`id`), project_users and service_accounts (`project_id`).
CREATE FUNCTION project_access_notify_auth() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    old_project TEXT;
    new_project TEXT;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('admin_api_keys_auth', 'reset:');
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'projects' THEN
        IF TG_OP <> 'INSERT' THEN old_project := OLD.id; END IF;
        IF TG_OP <> 'DELETE' THEN new_project := NEW.id; END IF;
    ELSE
        IF TG_OP <> 'INSERT' THEN old_project := OLD.project_id; END IF;
        IF TG_OP <> 'DELETE' THEN new_project := NEW.project_id; END IF;
    END IF;
    IF old_project IS NOT NULL THEN
        PERFORM pg_notify('admin_api_keys_auth', 'project:' || old_project);
    END IF;
    IF new_project IS NOT NULL AND new_project IS DISTINCT FROM old_project THEN
        PERFORM pg_notify('admin_api_keys_auth', 'project:' || new_project);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER projects_auth_change
    AFTER UPDATE OR DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION project_access_notify_auth();
CREATE TRIGGER projects_auth_truncate
    AFTER TRUNCATE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION project_access_notify_auth();

-- An added member regains access too: a cached "inactive" answer must go.
CREATE TRIGGER project_users_auth_change
    AFTER INSERT OR UPDATE OR DELETE ON project_users
    FOR EACH ROW EXECUTE FUNCTION project_access_notify_auth();
CREATE TRIGGER project_users_auth_truncate
    AFTER TRUNCATE ON project_users
    FOR EACH STATEMENT EXECUTE FUNCTION project_access_notify_auth();

CREATE TRIGGER service_accounts_auth_change
    AFTER UPDATE OR DELETE ON service_accounts
    FOR EACH ROW EXECUTE FUNCTION project_access_notify_auth();
CREATE TRIGGER service_accounts_auth_truncate
    AFTER TRUNCATE ON service_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION project_access_notify_auth();
