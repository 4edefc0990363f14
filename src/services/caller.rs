//! The caller of a write, as the database knows it inside the write's own transaction.
//!
//! Policy: the auth middleware checks a key when the request's headers arrive, but the body
//! (and with it the write) may come much later. So every write re-reads its caller in its
//! transaction (the key exists, is enabled, is unexpired at `now`, its owner is enabled, and
//! its effective scopes, its own within its owner's role, hold the scope the operation needs;
//! its effective permissions, what it may hand out, are its own within its owner's ceiling)
//! and, on PostgreSQL, locks the rows involved until the commit: a concurrent disable or
//! delete of the caller (or of its owner) is ordered either before the write (which then
//! answers 401) or after it, never in between. Grants and audit actors use this fresh view,
//! not the cached one.
//!
//! Lock order, everywhere: the lock-out guard's advisory lock (for changes it guards), then key
//! rows in id order, then user rows in id order. The `last_used_at` flush locks key rows in id
//! order too, so nothing waits on anything in a cycle.

use crate::audit::Actor;
use crate::auth::{self, AdminKey};
use crate::db::DbConnection;
use crate::domain::{Permissions, Scope, Scopes};
use crate::error::ApiError;
use crate::models::admin_api_key::{self, RowLock};
use crate::models::user::{self, User};

/// The caller of a write, read in its transaction.
#[derive(Debug)]
pub struct Caller {
    pub key_id: String,
    /// Effective: the key's own scopes within its owner's role.
    pub scopes: Scopes,
    /// Effective: the key's own permissions within its owner's ceiling.
    pub permissions: Permissions,
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

    /// 403 unless the caller's effective permissions cover every one of `granted` (no
    /// escalation).
    pub fn may_grant_permissions(&self, granted: &Permissions) -> Result<(), ApiError> {
        match self.permissions.first_uncovered(granted) {
            None => Ok(()),
            // The permission is the caller's own request: named only by shape, never echoed.
            Some(_) => Err(missing_permission()),
        }
    }
}

/// The 403 for a caller whose effective permissions do not cover what it would hand out.
pub fn missing_permission() -> ApiError {
    ApiError::Forbidden {
        message: "A key cannot hand out a permission that its own effective permissions (its \
                  permissions within its owner's ceiling) do not cover, and this one does not \
                  cover all of those this change would grant."
            .to_owned(),
        code: "missing_permission".to_owned(),
    }
}

/// What a write touches besides its caller, for the locks it takes on PostgreSQL.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// Nothing that exists yet (a new key or invite): the caller's key and owner `FOR SHARE`.
    Nothing,
    /// A new key for this user: the caller's key `FOR SHARE`, the caller's owner and this user
    /// `FOR SHARE` (so the user cannot be disabled or deleted under the new key).
    NewKeyFor(&'a str),
    /// This existing key: it and the caller's key `FOR UPDATE`, the caller's owner `FOR SHARE`.
    Key(&'a str),
    /// This user: the caller's key `FOR SHARE`, the caller's owner and this user `FOR UPDATE`.
    User(&'a str),
    /// This user and all their keys (a delete): the caller's key and the user's keys, then the
    /// caller's owner and the user, all `FOR UPDATE`.
    UserAndKeys(&'a str),
}

/// Re-reads the key that authenticated the request and checks it may do what needs `scope`:
/// 401 if it is gone, disabled or expired or its owner is disabled, 403 if its effective
/// scopes lack `scope`. Locks what `target` says (see [`Target`]) first.
pub fn authorize(
    conn: &mut DbConnection,
    key: &AdminKey,
    scope: Scope,
    target: Target<'_>,
    now: i64,
) -> Result<Caller, ApiError> {
    let caller_key = key.key_id.as_str();
    let owner = key.owner.id.as_str();
    match target {
        Target::Nothing => {
            admin_api_key::lock_keys(conn, &[caller_key], RowLock::Share)?;
            user::lock(conn, &[owner], RowLock::Share)?;
        }
        Target::NewKeyFor(user_id) => {
            admin_api_key::lock_keys(conn, &[caller_key], RowLock::Share)?;
            user::lock(conn, &[owner, user_id], RowLock::Share)?;
        }
        Target::Key(target) => {
            admin_api_key::lock_keys(conn, &[caller_key, target], RowLock::Update)?;
            user::lock(conn, &[owner], RowLock::Share)?;
        }
        Target::User(user_id) => {
            admin_api_key::lock_keys(conn, &[caller_key], RowLock::Share)?;
            user::lock(conn, &[owner, user_id], RowLock::Update)?;
        }
        Target::UserAndKeys(user_id) => {
            let mut keys = admin_api_key::ids_of_owner(conn, user_id)?;
            keys.push(caller_key.to_owned());
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            admin_api_key::lock_keys(conn, &keys, RowLock::Update)?;
            user::lock(conn, &[owner, user_id], RowLock::Update)?;
        }
    }
    let (record, owner) =
        admin_api_key::find_caller(conn, &key.key_id)?.ok_or_else(auth::invalid_key)?;
    auth::check_usable(record.enabled, record.expires_at, now)?;
    auth::check_owner(&owner)?;
    let scopes = record.scopes.intersect(owner.role().ceiling());
    auth::require_scope(scopes, scope)?;
    Ok(Caller {
        key_id: record.id,
        scopes,
        permissions: record.permissions.within(&owner.permissions),
        owner,
    })
}
