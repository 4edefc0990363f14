-- Where a change came from: the client's address (after TRUSTED_PROXIES) and its User-Agent
-- (redacted, at most 256 characters). Served inside the entry's actor object; NULL when
-- unknown, as on every row written before these columns.
ALTER TABLE audit_logs ADD COLUMN ip_address TEXT;
ALTER TABLE audit_logs ADD COLUMN user_agent TEXT;
