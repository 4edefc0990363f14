//! The caller of a write, as the database knows it inside the write's own transaction.
//!
//! Policy: the auth middleware checks a key when the request's headers arrive, but the body
//! (and with it the write) may come much later. So every write re-reads its caller in its
//! transaction (the key exists, is enabled, is unexpired at `now`, holds the scope the
//! operation needs) and, on PostgreSQL, locks that row (and the row it changes) until the
//! commit: a concurrent disable
//! or delete of the caller is ordered either before the write (which then answers 401) or
//! after it, never in between. Grants and audit actors use this fresh view, not the cached
//! one.

use crate::audit::Actor;
use crate::auth::{self, AdminKey};
use crate::db::DbConnection;
use crate::domain::{Scope, Scopes};
use crate::error::ApiError;
use crate::models::admin_api_key::{self, RowLock};
use crate::models::user::User;

/// The caller of a write, read in its transaction.
#[derive(Debug)]
pub struct Caller {
    pub key_id: String,
    pub scopes: Scopes,
    pub owner: User,
}

impl Caller {
    /// The caller as the audit log names it.
    pub fn actor(&self) -> Actor {
        Actor::ApiKey {
            key_id: self.key_id.clone(),
            user_id: self.owner.id.clone(),
            email: self.owner.email.clone(),
        }
    }

    /// 403 unless the caller holds every scope in `granted` (no escalation).
    pub fn may_grant(&self, granted: Scopes) -> Result<(), ApiError> {
        auth::may_grant(self.scopes, granted)
    }
}

/// Re-reads the key that authenticated the request and checks it may do what needs `scope`:
/// 401 if it is gone, disabled or expired, 403 if it lacks the scope.
///
/// On PostgreSQL the caller's row stays locked until the transaction ends: `FOR SHARE` for a
/// write that changes no existing key (`target` `None`), or, with the key it changes, both rows
/// `FOR UPDATE` in id order (the order the `last_used_at` flush locks in; changes of existing
/// keys also run under the lock-out guard's lock, taken before this one).
pub fn authorize(
    conn: &mut DbConnection,
    key: &AdminKey,
    scope: Scope,
    target: Option<&str>,
    now: i64,
) -> Result<Caller, ApiError> {
    match target {
        None => admin_api_key::lock_keys(conn, &[&key.key_id], RowLock::Share)?,
        Some(target) => admin_api_key::lock_keys(conn, &[&key.key_id, target], RowLock::Update)?,
    }
    let (record, owner) =
        admin_api_key::find_caller(conn, &key.key_id)?.ok_or_else(auth::invalid_key)?;
    auth::check_usable(record.enabled, record.expires_at, now)?;
    auth::require_scope(record.scopes, scope)?;
    Ok(Caller {
        key_id: record.id,
        scopes: record.scopes,
        owner,
    })
}
