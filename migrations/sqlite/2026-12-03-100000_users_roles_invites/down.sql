DROP INDEX audit_logs_actor_user_id;
ALTER TABLE audit_logs DROP COLUMN actor_user_id;
DROP TABLE invites;
DROP INDEX users_email;
DROP INDEX users_created_at_id;
ALTER TABLE users DROP COLUMN enabled;
