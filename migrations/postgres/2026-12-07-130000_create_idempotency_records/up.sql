-- What a create or rotate sent with an `Idempotency-Key` made, so that a retry of it makes
-- nothing new (see src/services/idempotency.rs). Written in the transaction that makes the
-- key; rows older than 24 hours are ignored and deleted as new ones are written.
CREATE TABLE idempotency_records (
    -- The key that sent the request: idempotency keys are per caller.
    caller_key_id TEXT NOT NULL,
    -- SHA-256 (hex) of the `Idempotency-Key` header; the header itself is not stored.
    idempotency_key_hash TEXT NOT NULL,
    -- SHA-256 (hex) of the method, the path and the request's body fields.
    request_fingerprint TEXT NOT NULL,
    -- The HTTP status of the answer.
    status INTEGER NOT NULL,
    -- The key the request made.
    key_id TEXT NOT NULL,
    -- The answer, sealed with the server's IDEMPOTENCY_KEY_SECRET (XChaCha20-Poly1305,
    -- hex of nonce and ciphertext); NULL when no secret is configured.
    response TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (caller_key_id, idempotency_key_hash)
);
CREATE INDEX idempotency_records_created_at ON idempotency_records (created_at);
