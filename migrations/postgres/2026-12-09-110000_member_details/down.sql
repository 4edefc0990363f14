ALTER TABLE invites DROP COLUMN phone_number;
ALTER TABLE invites DROP COLUMN last_name;
ALTER TABLE invites DROP COLUMN first_name;
ALTER TABLE users DROP COLUMN phone_number;
ALTER TABLE users DROP COLUMN last_name;
ALTER TABLE users DROP COLUMN first_name;
