-- Member details (seed 000): a member's and an invite's optional first and last name and
-- phone number (E.164, validated by the service). An invite's become the member's when it is
-- accepted. `name` stays as it is; the service derives it from these when none is given.
-- No trigger changes: only `name` reaches the caches (a key's owner), and it is watched
-- already.
ALTER TABLE users ADD COLUMN first_name TEXT;
ALTER TABLE users ADD COLUMN last_name TEXT;
ALTER TABLE users ADD COLUMN phone_number TEXT;
ALTER TABLE invites ADD COLUMN first_name TEXT;
ALTER TABLE invites ADD COLUMN last_name TEXT;
ALTER TABLE invites ADD COLUMN phone_number TEXT;
