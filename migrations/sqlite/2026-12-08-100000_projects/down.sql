DROP INDEX audit_logs_project_id;
ALTER TABLE audit_logs DROP COLUMN project_id;
DROP TABLE project_rate_limits;
DROP TABLE rate_limit_models;
DROP TABLE project_api_keys;
DROP TABLE service_accounts;
DROP TABLE project_users;
DROP TABLE projects;
