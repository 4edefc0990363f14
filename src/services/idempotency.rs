//! Creates and rotations that happen once however often they are sent: the `Idempotency-Key`
//! rules.
//!
//! Policy (Stripe's convention): a request with an `Idempotency-Key` is recorded, in the
//! transaction that makes its key, under the calling key and the header's SHA-256, with a
//! fingerprint of its method, path and body fields. Within [`TTL_SECS`], the same caller
//! sending the same key again:
//! - with the same request gets the first answer again, byte for byte, and nothing is made
//!   or audited — when the server has an `IDEMPOTENCY_KEY_SECRET`, which seals the answer
//!   (it holds the new secret `value`) so the database alone cannot reveal it. Without one
//!   the answer is not kept, and the retry gets a 409 naming the key the first request made,
//!   so the client can delete it;
//! - with another request gets a 409 (`idempotency_key_reused`);
//! - while the first is still running gets a 409 (`idempotency_key_in_use`).
//!
//! Only requests that made a key are recorded: one that failed (a 4xx or 5xx) made nothing,
//! and sending it again runs it again. Records older than [`TTL_SECS`] are ignored, and
//! deleted whenever a new one is written.

use sha2::{Digest, Sha256};

use crate::db::DbConnection;
use crate::domain::idempotency::{IdempotencyKey, ResponseSealer, hex};
use crate::error::ApiError;
use crate::models::idempotency::{self as records, IdempotencyRecord};
use crate::services::Change;

/// How long a record is kept and honoured: 24 hours.
pub const TTL_SECS: i64 = 24 * 3600;

/// An idempotent request: who sent it, under which key, and what it asked.
#[derive(Clone, Debug)]
pub struct Request {
    caller_key_id: String,
    key_hash: String,
    fingerprint: String,
}

impl Request {
    /// The request `route` (method and path, e.g. `POST /organization/admin_api_keys`) with
    /// the body fields `body` (a JSON value built the same way for the same request: member
    /// order and whitespace as sent do not matter), sent by the key `caller_key_id`.
    pub fn new(
        key: &IdempotencyKey,
        caller_key_id: &str,
        route: &str,
        body: &serde_json::Value,
    ) -> Self {
        let mut digest = Sha256::new();
        digest.update(route.as_bytes());
        digest.update(b"\n");
        digest.update(body.to_string().as_bytes());
        Self {
            caller_key_id: caller_key_id.to_owned(),
            key_hash: key.hash(),
            fingerprint: hex(&digest.finalize()),
        }
    }

    /// What a sealed answer is bound to: this record (caller, key and request).
    fn context(&self) -> Vec<u8> {
        [
            self.caller_key_id.as_bytes(),
            self.key_hash.as_bytes(),
            self.fingerprint.as_bytes(),
        ]
        .join(&0u8)
    }

    /// The PostgreSQL advisory lock held while the request runs: 64 bits of the SHA-256 of
    /// caller and key (a collision would only make one request wait for a retry).
    fn lock_id(&self) -> i64 {
        let digest =
            Sha256::digest([self.caller_key_id.as_bytes(), self.key_hash.as_bytes()].join(&0u8));
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first)
    }
}

/// What a request made: the id of its key and its answer as sent.
#[derive(Debug)]
pub struct Made {
    pub key_id: String,
    pub body: Vec<u8>,
}

/// The answer to send.
#[derive(Debug)]
pub struct Answer {
    pub key_id: String,
    pub body: Vec<u8>,
    /// The first request's answer, sent again: nothing was made this time.
    pub replayed: bool,
}

/// Runs `make` unless `request` was already made; see the module docs. Without a `request`
/// (no header), just runs `make`. Runs inside the transaction of `services::write`, so the
/// record exists exactly when the key does.
pub fn once<F>(
    conn: &mut DbConnection,
    request: Option<&Request>,
    sealer: Option<&ResponseSealer>,
    now: i64,
    make: F,
) -> Result<Change<Answer>, ApiError>
where
    F: FnOnce(&mut DbConnection) -> Result<Change<Made>, ApiError>,
{
    let fresh = |made: Made| Answer {
        key_id: made.key_id,
        body: made.body,
        replayed: false,
    };
    let Some(request) = request else {
        return Ok(make(conn)?.map(fresh));
    };
    // Another transaction holding it is running the same request: refuse rather than wait,
    // so a client that retries early learns why. On SQLite writes run one at a time.
    if !records::try_lock(conn, request.lock_id())? {
        return Err(ApiError::Conflict {
            message: "A request with this `Idempotency-Key` is still being processed; retry \
                      it once that one has finished to get its answer."
                .to_owned(),
            code: "idempotency_key_in_use",
        });
    }
    let since = now - TTL_SECS + 1;
    if let Some(record) = records::find(conn, &request.caller_key_id, &request.key_hash, since)? {
        return replay(&record, request, sealer).map(Change::new);
    }
    let made = make(conn)?;
    records::delete_older_than(conn, since)?;
    made.try_map(|made| {
        let response = sealer
            .map(|sealer| sealer.seal(&request.context(), &made.body))
            .transpose()?;
        records::insert(
            conn,
            &IdempotencyRecord {
                caller_key_id: request.caller_key_id.clone(),
                idempotency_key_hash: request.key_hash.clone(),
                request_fingerprint: request.fingerprint.clone(),
                status: 200,
                key_id: made.key_id.clone(),
                response,
                created_at: now,
            },
        )?;
        Ok(fresh(made))
    })
}

/// The answer to a request sent again under a recorded key.
fn replay(
    record: &IdempotencyRecord,
    request: &Request,
    sealer: Option<&ResponseSealer>,
) -> Result<Answer, ApiError> {
    if record.request_fingerprint != request.fingerprint {
        return Err(ApiError::Conflict {
            message: "This `Idempotency-Key` was already used for a different request (another \
                      path or body) in the last 24 hours; use a new key for a new request."
                .to_owned(),
            code: "idempotency_key_reused",
        });
    }
    let kept = record.response.as_deref().zip(sealer);
    match kept.and_then(|(sealed, sealer)| sealer.open(&request.context(), sealed)) {
        Some(body) => Ok(Answer {
            key_id: record.key_id.clone(),
            body,
            replayed: true,
        }),
        None => Err(ApiError::Conflict {
            message: format!(
                "The request with this `Idempotency-Key` already made the key `{}`. Its secret \
                 was sent only in that answer, which this server does not keep, so it cannot \
                 be sent again: if it was lost, delete that key and create a new one with a \
                 new `Idempotency-Key`.",
                record.key_id
            ),
            code: "idempotency_key_already_used",
        }),
    }
}
