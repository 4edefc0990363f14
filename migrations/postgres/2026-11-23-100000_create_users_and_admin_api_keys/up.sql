-- Ids are TEXT made in Rust, times are BIGINT Unix seconds: the same on both backends.
-- COLLATE "C" gives byte-order comparison, the same order SQLite uses, and a cheaper index.
CREATE TABLE users (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT NOT NULL,
    email      TEXT,
    role       TEXT NOT NULL DEFAULT 'owner',
    created_at BIGINT NOT NULL
);

CREATE TABLE admin_api_keys (
    id             TEXT COLLATE "C" PRIMARY KEY,
    name           TEXT NOT NULL,
    -- Lowercase hex SHA-256 of the full key; the plaintext is never stored.
    key_hash       TEXT COLLATE "C" NOT NULL UNIQUE,
    redacted_value TEXT NOT NULL,
    owner_id       TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    created_at     BIGINT NOT NULL,
    last_used_at   BIGINT,
    expires_at     BIGINT
);

-- Keyset pagination walks this index in both directions.
CREATE INDEX admin_api_keys_created_at_id ON admin_api_keys (created_at, id);
CREATE INDEX admin_api_keys_owner_id ON admin_api_keys (owner_id);
