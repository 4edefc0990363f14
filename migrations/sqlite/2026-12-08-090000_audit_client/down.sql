ALTER TABLE audit_logs DROP COLUMN user_agent;
ALTER TABLE audit_logs DROP COLUMN ip_address;
