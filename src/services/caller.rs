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
//! Two kinds of caller act through the same service functions and rules ([`Principal`]): an
//! admin key (the HTTP API), or an operator at the command line with access to the database
//! (`admin-api-keys keys|users …`), who holds every scope and permission, is named in the
//! audit log as a `session` actor of the user given with `--as-user`, and passes the lock-out
//! guard only with `--force`.
//!
//! Lock order, everywhere: the lock-out guard's advisory lock (for changes it guards), then key
//! rows in id order, then user rows in id order. The `last_used_at` flush locks key rows in id
//! order too, so nothing waits on anything in a cycle.

use crate::audit::{Actor, Origin};
use crate::auth::{self, AdminKey};
use crate::db::DbConnection;
use crate::domain::{McpPolicy, Permissions, Scope, Scopes};
use crate::error::ApiError;
use crate::models::admin_api_key::{self, RowLock};
use crate::models::user::{self, User};
use crate::services::users::no_such_user_in;

/// Who asks for a change: the services take this (or, through `From`, an `&AdminKey`).
#[derive(Clone, Copy, Debug)]
pub enum Principal<'a> {
    /// The admin key that authenticated the request.
    Key(&'a AdminKey),
    /// An operator at the command line.
    Operator(&'a Operator),
}

impl<'a> From<&'a AdminKey> for Principal<'a> {
    fn from(key: &'a AdminKey) -> Self {
        Principal::Key(key)
    }
}

impl<'a> From<&'a Operator> for Principal<'a> {
    fn from(operator: &'a Operator) -> Self {
        Principal::Operator(operator)
    }
}

impl Principal<'_> {
    /// The user acting: the key's owner, or the operator's session user.
    pub fn user_id(&self) -> &str {
        match self {
            Principal::Key(key) => &key.owner.id,
            Principal::Operator(operator) => &operator.user_id,
        }
    }

    /// Whether the lock-out guard may refuse this caller's change (everyone but an operator
    /// who said `--force`).
    pub fn guarded(self) -> bool {
        !matches!(self, Principal::Operator(Operator { force: true, .. }))
    }
}

/// An operator at the command line: whoever can reach `DATABASE_URL` already holds every
/// power over the data, so the CLI acts with full authority; what it adds is the record (the
/// audit log names the session's user) and the lock-out guard (unless `force`).
#[derive(Clone, Debug)]
pub struct Operator {
    /// The user the audit log names as the session's (`--as-user`); must exist, may be
    /// disabled (it attributes the change, it grants nothing).
    pub user_id: String,
    /// Whether changes the lock-out guard would refuse go ahead anyway.
    pub force: bool,
}

/// The caller of a write, read in its transaction.
#[derive(Debug)]
pub struct Caller {
    /// The key that authenticated the request; `None` for an operator at the command line.
    pub key_id: Option<String>,
    /// Effective: the key's own scopes within its owner's role (every scope for an operator).
    pub scopes: Scopes,
    /// Effective: the key's own permissions within its owner's ceiling (every permission for
    /// an operator).
    pub permissions: Permissions,
    /// The key's owner, or the operator's session user.
    pub owner: User,
    /// The key's MCP policy as stored (every MCP access for an operator); see
    /// `services::mcp` for what it lets the caller grant.
    pub mcp: McpPolicy,
    /// Where the request came from (empty for an operator).
    pub origin: Origin,
}

impl Caller {
    /// The caller as the audit log names it.
    pub fn actor(&self) -> Actor {
        match &self.key_id {
            Some(key_id) => Actor::ApiKey {
                key_id: key_id.clone(),
                user_id: self.owner.id.clone(),
                email: self.owner.email.clone(),
                origin: self.origin.clone(),
            },
            None => Actor::Session {
                user_id: self.owner.id.clone(),
                email: self.owner.email.clone(),
                origin: self.origin.clone(),
            },
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
/// scopes lack `scope`. Locks what `target` says (see [`Target`]) first. An operator holds
/// every scope; their session user must exist (404 `as_user`) and is locked `FOR SHARE` in
/// place of a key's owner.
pub fn authorize<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    scope: Scope,
    target: Target<'_>,
    now: i64,
) -> Result<Caller, ApiError> {
    let who = who.into();
    let (caller_key, owner) = match who {
        Principal::Key(key) => (Some(key.key_id.as_str()), key.owner.id.as_str()),
        Principal::Operator(operator) => (None, operator.user_id.as_str()),
    };
    let keys = |others: &[&str]| -> Vec<String> {
        caller_key
            .into_iter()
            .chain(others.iter().copied())
            .map(str::to_owned)
            .collect()
    };
    let (key_ids, key_lock, user_lock, target_user) = match target {
        Target::Nothing => (keys(&[]), RowLock::Share, RowLock::Share, None),
        Target::NewKeyFor(user_id) => (keys(&[]), RowLock::Share, RowLock::Share, Some(user_id)),
        Target::Key(target) => (keys(&[target]), RowLock::Update, RowLock::Share, None),
        Target::User(user_id) => (keys(&[]), RowLock::Share, RowLock::Update, Some(user_id)),
        Target::UserAndKeys(user_id) => {
            let mut ids = admin_api_key::ids_of_owner(conn, user_id)?;
            ids.extend(caller_key.map(str::to_owned));
            (ids, RowLock::Update, RowLock::Update, Some(user_id))
        }
    };
    // The common case, a key acting on nothing else (a create for its own owner): one
    // statement reads the key with its owner and locks both, in the order the general path
    // below takes them.
    let alone = matches!(target, Target::Nothing) && matches!(who, Principal::Key(_));
    if !alone {
        if !key_ids.is_empty() {
            let key_ids: Vec<&str> = key_ids.iter().map(String::as_str).collect();
            admin_api_key::lock_keys(conn, &key_ids, key_lock)?;
        }
        let mut user_ids = vec![owner];
        user_ids.extend(target_user);
        user::lock(conn, &user_ids, user_lock)?;
    }
    match who {
        Principal::Key(key) => {
            let found = if alone {
                admin_api_key::find_caller_locked(conn, &key.key_id)?
            } else {
                admin_api_key::find_caller(conn, &key.key_id)?
            };
            let (record, owner) = found.ok_or_else(auth::invalid_key)?;
            auth::check_usable(record.enabled, record.expires_at, now)?;
            auth::check_owner(&owner)?;
            let scopes = record.scopes.intersect(owner.role().ceiling());
            auth::require_scope(scopes, scope)?;
            Ok(Caller {
                key_id: Some(record.id),
                scopes,
                permissions: record.permissions.within(&owner.permissions),
                owner,
                mcp: record.mcp,
                origin: key.origin(),
            })
        }
        Principal::Operator(operator) => {
            let owner = user::find(conn, &operator.user_id)?
                .ok_or_else(|| no_such_user_in("as_user", &operator.user_id))?;
            Ok(Caller {
                key_id: None,
                scopes: Scopes::all(),
                permissions: Permissions::all(),
                owner,
                mcp: McpPolicy::everything(),
                origin: Origin::default(),
            })
        }
    }
}
