-- The key that replaced this one by rotation, if any: a key is rotated at most once (a
-- second rotation answers 409 naming this successor, unless the successor was deleted).
ALTER TABLE admin_api_keys ADD COLUMN rotated_to TEXT;
