//! Admin keys: issuing (create, rotate and bootstrap share one path), changing, deleting, the
//! lock-out guard, and the audit event of each change.
//!
//! Every function runs inside the transaction `services::write` opens (a failure rolls back
//! the whole change, its audit entry included) and returns the invalidations it implies.

use crate::audit::{self, Actor, AuditEvent, KeyChangesRequested};
use crate::cache::Invalidation;
use crate::db::DbConnection;
use crate::domain::mcp::McpRequest;
use crate::domain::secret::{self, ApiKeySecret};
use crate::domain::{
    Expiry, KeyLifetime, KeyName, LifetimePolicy, McpPolicy, Overlap, Permissions, Scope, Scopes,
    only_earlier,
};
use crate::error::ApiError;
use crate::ids;
use crate::models::admin_api_key::{self, KeyChanges, KeyWithOwner, NewAdminApiKey};
use crate::models::invite;
use crate::models::user;
use crate::models::user::User;
use crate::services::Change;
use crate::services::caller::{Caller, Principal, Target, authorize};
use crate::services::guard::{Guarded, keep_an_admin};
use crate::services::users::no_such_user_in;

/// A key just issued: the secret (shown once) and the key as stored, with its owner.
#[derive(Debug)]
pub struct Issued {
    pub secret: ApiKeySecret,
    pub key: KeyWithOwner,
}

/// What a create asks for; validated at the edge.
#[derive(Debug)]
pub struct NewKey {
    pub name: KeyName,
    /// `None`: the caller's own scopes (within the new key's owner's role).
    pub scopes: Option<Scopes>,
    /// When it expires, as the organisation's lifetime policy made it of the request.
    pub expires_at: Option<i64>,
    /// `None`: the caller's owner. Another user needs `users.write`.
    pub owner_id: Option<String>,
    /// Each covered by the caller's own; `None` means none.
    pub permissions: Option<Permissions>,
    /// The MCP policy: fields left out are the caller's own (see `services::mcp`).
    pub mcp: McpRequest,
}

/// What an update asks for; at least one field is set.
#[derive(Debug, Default)]
pub struct KeyUpdate {
    pub name: Option<KeyName>,
    pub enabled: Option<bool>,
    pub scopes: Option<Scopes>,
    pub permissions: Option<Permissions>,
    /// A new, earlier `expires_at`: after now, within the lifetime policy, never later than
    /// the key's current one (an update shortens a key's life and never extends it).
    pub expires_at: Option<i64>,
    /// A change of the MCP policy, over the key's own.
    pub mcp: McpRequest,
}

/// The 404 for a key id that does not exist.
pub fn no_such_key(key_id: &str) -> ApiError {
    let message = match ids::ours(key_id) {
        Some(id) => format!("No admin API key with id `{id}` exists."),
        None => {
            "No admin API key has this id (key ids are `key_` and 24 letters or digits).".to_owned()
        }
    };
    ApiError::NotFound {
        message,
        param: Some("key_id"),
    }
}

/// A new key owned by the caller's owner, or by `new.owner_id` (which needs `users.write` and
/// an enabled user), holding `new.scopes`: each held by the caller and within the owner's
/// role (403 otherwise). Without `scopes`, the caller's own scopes within that role.
pub fn create<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    new: NewKey,
    now: i64,
) -> Result<Change<Issued>, ApiError> {
    let who = who.into();
    let for_someone_else = new.owner_id.as_deref().filter(|id| *id != who.user_id());
    if let Some(owner_id) = for_someone_else
        && !ids::plausible(owner_id)
    {
        return Err(no_such_user_in("owner_id", owner_id));
    }
    let target = for_someone_else.map_or(Target::Nothing, Target::NewKeyFor);
    let caller = authorize(conn, who, Scope::AdminApiKeysWrite, target, now)?;
    let owner = match for_someone_else {
        None => caller.owner.clone(),
        Some(owner_id) => owner_for(conn, &caller, owner_id)?,
    };
    let ceiling = owner.role().ceiling();
    let scopes = match new.scopes {
        None => caller.scopes.intersect(ceiling),
        Some(scopes) => {
            caller.may_grant(scopes)?;
            within_role(scopes, &owner)?;
            scopes
        }
    };
    let permissions = new.permissions.unwrap_or_default();
    caller.may_grant_permissions(&permissions)?;
    within_ceiling(&permissions, &owner)?;
    let mcp = crate::services::mcp::new_key_policy(&caller, &new.mcp)?;
    let issued = issue(
        conn,
        &caller.actor(),
        Spec {
            name: new.name.as_str(),
            owner: &owner,
            scopes,
            permissions,
            expires_at: new.expires_at,
            mcp,
        },
        now,
    )?;
    let created = Invalidation::created(&issued.secret);
    Ok(Change::new(issued).invalidate(created))
}

/// The user `owner_id` as the owner of a key the caller makes for them: the caller needs
/// `users.write`, the user must exist (404) and be enabled (409).
fn owner_for(conn: &mut DbConnection, caller: &Caller, owner_id: &str) -> Result<User, ApiError> {
    crate::auth::require_scope(caller.scopes, Scope::UsersWrite)?;
    let owner = user::find(conn, owner_id)?.ok_or_else(|| no_such_user_in("owner_id", owner_id))?;
    if !owner.enabled {
        return Err(ApiError::Conflict {
            message: "This user is disabled: enable them before giving them a key.".to_owned(),
            code: "user_disabled",
        });
    }
    Ok(owner)
}

/// 403 unless `scopes` fit the role of `owner` (a reader's keys hold only read scopes).
pub fn within_role(scopes: Scopes, owner: &User) -> Result<(), ApiError> {
    let role = owner.role();
    match scopes.missing_from(role.ceiling()).first() {
        None => Ok(()),
        Some(scope) => Err(ApiError::Forbidden {
            message: format!("The key's owner is a `{role}`, whose keys cannot hold `{scope}`."),
            code: "scope_exceeds_role".to_owned(),
        }),
    }
}

/// 403 unless `permissions` fit within the permission ceiling of `owner` (a key cannot be
/// given what its owner may not have downstream).
pub fn within_ceiling(permissions: &Permissions, owner: &User) -> Result<(), ApiError> {
    match owner.permissions.first_uncovered(permissions) {
        None => Ok(()),
        Some(_) => Err(ApiError::Forbidden {
            message: "The key's owner may not hold one of these permissions: a key's \
                      permissions must fit within its owner's `permissions`."
                .to_owned(),
            code: "permission_exceeds_owner".to_owned(),
        }),
    }
}

/// What a rotation asks for: the successor's lifetime (`None`: the lifetime the old key was
/// given), within the organisation's `policy`, and how long the old key overlaps it.
#[derive(Clone, Copy, Debug)]
pub struct Rotation {
    pub lifetime: Option<KeyLifetime>,
    pub overlap: Overlap,
    pub policy: LifetimePolicy,
}

/// A successor of the key `key_id` (same name, owner, scopes and MCP policy, checked against
/// `presets`) and the end of the old one after the overlap. The caller must hold every scope
/// of the rotated key. A key is replaced once: rotating it again while its successor exists
/// is a 409 naming the successor.
pub fn rotate<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    key_id: &str,
    asked: Rotation,
    presets: &crate::domain::McpPresets,
    now: i64,
) -> Result<Change<Issued>, ApiError> {
    let Rotation {
        lifetime,
        overlap,
        policy,
    } = asked;
    let policy = &policy;
    if !ids::plausible(key_id) {
        return Err(no_such_key(key_id));
    }
    let who = who.into();
    let issued = keep_an_admin(conn, now, Guarded::Key("rotate"), who.guarded(), |conn| {
        let caller = authorize(
            conn,
            who,
            Scope::AdminApiKeysWrite,
            Target::Key(key_id),
            now,
        )?;
        let (old, owner) = admin_api_key::find(conn, key_id)?.ok_or_else(|| no_such_key(key_id))?;
        caller.may_grant(old.scopes)?;
        caller.may_grant_permissions(&old.permissions.within(&owner.permissions))?;
        crate::services::mcp::may_grant(&caller, &old.mcp, presets)?;
        // The successor's secret goes to the caller: a key of another user is theirs to
        // rotate only with `users.write`, as making one for them would be.
        if owner.id != caller.owner.id {
            crate::auth::require_scope(caller.scopes, Scope::UsersWrite)?;
        }
        if let Some(successor) = admin_api_key::live_successor(conn, key_id)? {
            return Err(ApiError::Conflict {
                message: format!(
                    "This key was already rotated: `{successor}` replaces it. Rotate that key \
                     instead, or delete it first to rotate this one again."
                ),
                code: "already_rotated",
            });
        }
        let asked = Expiry::rotated(lifetime, old.created_at, old.expires_at, policy);
        let expires_at = policy.expires_at(asked, now)?;
        let actor = caller.actor();
        let issued = issue(
            conn,
            &actor,
            Spec {
                name: &old.name,
                owner: &owner,
                scopes: old.scopes,
                permissions: old.permissions.clone(),
                expires_at,
                mcp: old.mcp.clone(),
            },
            now,
        )?;
        let old_expires_at = overlap.old_key_expires_at(now, old.expires_at);
        let moved = admin_api_key::retire(conn, key_id, old_expires_at, &issued.key.0.id)?;
        // The old key ends after the overlap; the invites it made live on with the key that
        // replaces it (and are withdrawn if that one is deleted or disabled).
        invite::hand_over_pending(conn, key_id, &issued.key.0.id, now)?;
        let event = AuditEvent::KeyUpdated {
            key_id: key_id.to_owned(),
            changes: KeyChangesRequested {
                expires_at: moved.then_some(old_expires_at),
                rotated_to: Some(issued.key.0.id.clone()),
                ..Default::default()
            },
        };
        audit::record(conn, now, &actor, &event)?;
        Ok(issued)
    })?;
    let created = Invalidation::created(&issued.secret);
    Ok(Change::new(issued)
        .invalidate(created)
        .invalidate(Invalidation::Key(key_id.to_owned())))
}

/// Renames, enables or disables, changes the scopes or permissions of, or brings forward the
/// end of the key `key_id`; returns it as changed. A new `expires_at` may not be later than
/// the current one (400): extending a key's life is a rotation, under the rules of today. Granting scopes, and re-enabling a key (which restores its scopes to use), need
/// the caller to hold them. Disabling it withdraws the invites it made that are still
/// pending (re-enabling does not bring them back).
pub fn update<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    key_id: &str,
    update: KeyUpdate,
    now: i64,
) -> Result<Change<KeyWithOwner>, ApiError> {
    if !ids::plausible(key_id) {
        return Err(no_such_key(key_id));
    }
    let mut changes = KeyChanges {
        name: update.name.map(KeyName::into_string),
        enabled: update.enabled,
        scopes: update.scopes,
        permissions: update.permissions,
        expires_at: update.expires_at,
        mcp: None,
    };
    let mcp_request = update.mcp;
    let who = who.into();
    keep_an_admin(conn, now, Guarded::Key("change"), who.guarded(), |conn| {
        let caller = authorize(
            conn,
            who,
            Scope::AdminApiKeysWrite,
            Target::Key(key_id),
            now,
        )?;
        let (target, owner) =
            admin_api_key::find(conn, key_id)?.ok_or_else(|| no_such_key(key_id))?;
        if let Some(scopes) = changes.scopes {
            caller.may_grant(scopes)?;
            within_role(scopes, &owner)?;
        }
        if let Some(permissions) = &changes.permissions {
            caller.may_grant_permissions(permissions)?;
            within_ceiling(permissions, &owner)?;
        }
        if let Some(at) = changes.expires_at {
            only_earlier(at, target.expires_at)?;
        }
        changes.mcp = crate::services::mcp::changed_policy(&caller, &target.mcp, &mcp_request)?;
        if changes.enabled == Some(true) {
            caller.may_grant(target.scopes)?;
            caller.may_grant_permissions(&target.permissions.within(&owner.permissions))?;
        }
        if !admin_api_key::update(conn, key_id, &changes)? {
            return Err(no_such_key(key_id));
        }
        let withdrawn = if changes.enabled == Some(false) {
            invite::delete_pending_by_key(conn, key_id, now)?
        } else {
            Vec::new()
        };
        let event = AuditEvent::KeyUpdated {
            key_id: key_id.to_owned(),
            changes: KeyChangesRequested {
                name: changes.name.clone(),
                enabled: changes.enabled,
                scopes: changes.scopes,
                permissions: changes.permissions.clone(),
                expires_at: changes.expires_at,
                mcp: changes.mcp.clone(),
                ..Default::default()
            },
        };
        let actor = caller.actor();
        audit::record(conn, now, &actor, &event)?;
        withdraw_invites(conn, &actor, withdrawn, now)
    })?;
    let changed = admin_api_key::find(conn, key_id)?.ok_or_else(|| no_such_key(key_id))?;
    Ok(Change::new(changed).invalidate(Invalidation::Key(key_id.to_owned())))
}

/// Deletes the key `key_id` for good, withdrawing the invites it made that are still pending.
pub fn delete<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    key_id: &str,
    now: i64,
) -> Result<Change<()>, ApiError> {
    if !ids::plausible(key_id) {
        return Err(no_such_key(key_id));
    }
    let who = who.into();
    let hashes = keep_an_admin(conn, now, Guarded::Key("delete"), who.guarded(), |conn| {
        let caller = authorize(
            conn,
            who,
            Scope::AdminApiKeysWrite,
            Target::Key(key_id),
            now,
        )?;
        let withdrawn = invite::delete_pending_by_key(conn, key_id, now)?;
        let hashes = admin_api_key::hashes_of(conn, &[key_id.to_owned()])?;
        if !admin_api_key::delete(conn, key_id)? {
            return Err(no_such_key(key_id));
        }
        let event = AuditEvent::KeyDeleted {
            key_id: key_id.to_owned(),
        };
        let actor = caller.actor();
        audit::record(conn, now, &actor, &event)?;
        withdraw_invites(conn, &actor, withdrawn, now)?;
        Ok(hashes)
    })?;
    let change = Change::new(()).invalidate(Invalidation::Key(key_id.to_owned()));
    Ok(hashes.iter().fold(change, |change, hash| {
        change.invalidate(Invalidation::deleted(hash))
    }))
}

/// Records `invite.deleted` by `actor` for each invite withdrawn with the key that made it
/// (deleted or disabled: an invite carries its key's authority, see `services::invites`).
fn withdraw_invites(
    conn: &mut DbConnection,
    actor: &Actor,
    withdrawn: Vec<String>,
    now: i64,
) -> Result<(), ApiError> {
    for invite_id in withdrawn {
        audit::record(conn, now, actor, &AuditEvent::InviteDeleted { invite_id })?;
    }
    Ok(())
}

/// A key to issue.
pub(crate) struct Spec<'a> {
    pub name: &'a str,
    pub owner: &'a User,
    pub scopes: Scopes,
    pub permissions: Permissions,
    pub expires_at: Option<i64>,
    /// As stored (a preset by name).
    pub mcp: McpPolicy,
}

/// The one way a key comes to exist: draws a secret, stores the key under its hash and
/// records `api_key.created` by `actor` (on PostgreSQL both in one statement).
pub(crate) fn issue(
    conn: &mut DbConnection,
    actor: &Actor,
    spec: Spec<'_>,
    now: i64,
) -> Result<Issued, ApiError> {
    let secret = secret::generate_key();
    let key_id = ids::random_id(ids::KEY);
    let event = AuditEvent::KeyCreated {
        key_id: key_id.clone(),
        name: spec.name.to_owned(),
        scopes: spec.scopes,
        permissions: spec.permissions.clone(),
        expires_at: spec.expires_at,
        mcp: spec.mcp.clone(),
    };
    // The key and its audit entry in one statement where that saves a round trip.
    let row = admin_api_key::insert_audited(
        conn,
        &NewAdminApiKey {
            id: &key_id,
            name: spec.name,
            key_hash: &secret.hash(),
            redacted_value: &secret.redacted(),
            owner_id: &spec.owner.id,
            created_at: now,
            expires_at: spec.expires_at,
            scopes: spec.scopes,
            permissions: spec.permissions,
            mcp: &spec.mcp,
        },
        &audit::entry(now, actor, &event),
    )?;
    Ok(Issued {
        secret,
        key: (row, spec.owner.clone()),
    })
}
