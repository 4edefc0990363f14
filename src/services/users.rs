//! Users: changing (role, name, enabled) and deleting members, with the lock-out guard and the
//! audit event of each change. Members join by accepting an invite (`services::invites`) or by
//! `bootstrap`.
//!
//! Every function runs inside the transaction `services::write` opens and returns the
//! invalidations it implies: a change to a user drops the cached auth records of all their keys
//! (on every replica, through the `users` triggers on PostgreSQL), so disabling or demoting a
//! user takes effect on their keys' next request.
//!
//! A member's `permissions` are the ceiling of their keys' permissions downstream (forward
//! auth, introspection), as their role is the ceiling of their keys' scopes: a key's effective
//! permissions are its own within its owner's. Owners hold every permission; a reader holds
//! what an owner (or another member covering it) set.

use crate::audit::{self, AuditEvent, UserChangesRequested};
use crate::cache::Invalidation;
use crate::db::DbConnection;
use crate::domain::{KeyName, Permissions, PersonName, PhoneNumber, Role, Scope, derived_name};
use crate::error::ApiError;
use crate::ids;
use crate::models::user::{self, User, UserChanges};
use crate::models::{admin_api_key, invite, project_api_key, project_user};
use crate::services::Change;
use crate::services::caller::{Principal, Target, authorize};
use crate::services::guard::{Guarded, keep_an_admin};
use crate::services::project_keys;

/// What a change of a user asks for; at least one field is set.
#[derive(Debug, Default)]
pub struct UserUpdate {
    pub role: Option<Role>,
    pub name: Option<KeyName>,
    pub enabled: Option<bool>,
    /// A reader's new permission ceiling (an owner's is always every permission).
    pub permissions: Option<Permissions>,
    /// Member details (seed 000); `Some(None)` clears one.
    pub first_name: Option<Option<PersonName>>,
    pub last_name: Option<Option<PersonName>>,
    pub phone_number: Option<Option<PhoneNumber>>,
}

/// The 404 for a user id that does not exist.
pub fn no_such_user(user_id: &str) -> ApiError {
    no_such_user_in("user_id", user_id)
}

/// The 404 for a user id, given as `param`, that does not exist.
pub fn no_such_user_in(param: &'static str, user_id: &str) -> ApiError {
    let message = match ids::ours(user_id) {
        Some(id) => format!("No user with id `{id}` exists."),
        None => "No user has this id (user ids are `user_` and 24 letters or digits).".to_owned(),
    };
    ApiError::NotFound {
        message,
        param: Some(param),
    }
}

/// Changes the role, name, permission ceiling, enabled state or member details of the user
/// `user_id`; returns them as changed. A partial change, as upstream's modify: what is not
/// sent keeps its value (seed 000's `updateUser` replaces everything; ours does not).
///
/// - Promoting to `owner` or re-enabling needs the caller to hold every scope of the user's
///   (new) role (403).
/// - The ceiling follows the role: an owner's is every permission; demoting an owner leaves
///   the ceiling sent with the change, or none. Setting `permissions` on an owner is a 400.
/// - Whatever the change gives (a wider ceiling, or permissions their keys regain downstream
///   through re-enabling, promotion or a wider ceiling) must be covered by the caller's own
///   effective permissions (403 `missing_permission`): no escalation through someone else's
///   keys.
/// - Demoting or disabling is refused (409 `last_owner`) if no one could run the organisation
///   afterwards.
pub fn update<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    user_id: &str,
    update: UserUpdate,
    now: i64,
) -> Result<Change<User>, ApiError> {
    if !ids::plausible(user_id) {
        return Err(no_such_user(user_id));
    }
    let who = who.into();
    let changed = keep_an_admin(conn, now, Guarded::User("change"), who.guarded(), |conn| {
        let caller = authorize(conn, who, Scope::UsersWrite, Target::User(user_id), now)?;
        let target = user::find(conn, user_id)?.ok_or_else(|| no_such_user(user_id))?;
        let role = update.role.unwrap_or(target.role());
        let ceiling = new_ceiling(&target, role, update.permissions.clone())?;
        let promoted = role == Role::Owner && target.role() != Role::Owner;
        let enabled = update.enabled.unwrap_or(target.enabled);
        if promoted || (enabled && !target.enabled) {
            caller.may_grant(role.ceiling())?;
        }
        // The ceiling itself, where it widens...
        let widened: Permissions = ceiling
            .iter()
            .filter(|p| !target.permissions.covers(p))
            .map(str::to_owned)
            .collect();
        caller.may_grant_permissions(&widened)?;
        // ...and what the user's keys regain downstream.
        for held in admin_api_key::live_permissions_of_owner(conn, user_id, now)? {
            let before = if target.enabled {
                held.within(&target.permissions)
            } else {
                Permissions::default()
            };
            let after = if enabled {
                held.within(&ceiling)
            } else {
                Permissions::default()
            };
            let regained: Permissions = after
                .iter()
                .filter(|p| !before.covers(p))
                .map(str::to_owned)
                .collect();
            caller.may_grant_permissions(&regained)?;
        }
        let permissions = (ceiling != target.permissions).then_some(ceiling);
        let text = |part: &Option<Option<PersonName>>| {
            part.as_ref()
                .map(|part| part.as_ref().map(|name| name.as_str().to_owned()))
        };
        let (first_name, last_name) = (text(&update.first_name), text(&update.last_name));
        let name = match &update.name {
            Some(name) => Some(name.as_str().to_owned()),
            None => followed_name(&target, first_name.as_ref(), last_name.as_ref()),
        };
        let changes = UserChanges {
            name,
            role: update.role.map(|role| role.as_str().to_owned()),
            enabled: update.enabled,
            permissions: permissions.clone(),
            first_name,
            last_name,
            phone_number: (update.phone_number.as_ref())
                .map(|phone| phone.as_ref().map(|phone| phone.as_str().to_owned())),
        };
        user::update(conn, user_id, &changes)?;
        let event = AuditEvent::UserUpdated {
            user_id: user_id.to_owned(),
            changes: UserChangesRequested {
                role: update.role,
                name: changes.name.clone(),
                enabled: changes.enabled,
                permissions,
                first_name: changes.first_name.clone(),
                last_name: changes.last_name.clone(),
                phone_number: (update.phone_number.as_ref())
                    .map(|phone| phone.as_ref().map(PhoneNumber::masked)),
            },
        };
        audit::record(conn, now, &caller.actor(), &event)?;
        user::find(conn, user_id)?.ok_or_else(|| no_such_user(user_id))
    })?;
    Ok(Change::new(changed).invalidate(Invalidation::User(user_id.to_owned())))
}

/// The `name` a change of first or last name brings (`None`: the name stays). A name derived
/// from the stored parts follows them (`Grace Hopper` becomes `Grace Murray` with a new last
/// name); a name set any other way stays as set, and so does a name whose parts are all
/// cleared (a member always has a name).
fn followed_name(
    target: &User,
    first: Option<&Option<String>>,
    last: Option<&Option<String>>,
) -> Option<String> {
    if first.is_none() && last.is_none() {
        return None;
    }
    let derived = derived_name(target.first_name.as_deref(), target.last_name.as_deref());
    if derived.as_deref() != Some(target.name.as_str()) {
        return None;
    }
    let first = first.map_or(target.first_name.as_deref(), Option::as_deref);
    let last = last.map_or(target.last_name.as_deref(), Option::as_deref);
    derived_name(first, last).filter(|name| *name != target.name)
}

/// The permission ceiling of `target` once its role is `role` and `asked` (if sent) applies.
fn new_ceiling(
    target: &User,
    role: Role,
    asked: Option<Permissions>,
) -> Result<Permissions, ApiError> {
    match (role, asked) {
        (Role::Owner, Some(asked)) if !asked.is_everything() => Err(ApiError::invalid_param(
            "permissions",
            "An owner holds every permission; `permissions` sets the ceiling of a `reader`.",
        )),
        (Role::Owner, _) => Ok(Permissions::all()),
        (Role::Reader, Some(asked)) => Ok(asked),
        // Demoted: an owner's ceiling (everything) does not carry over to a reader.
        (Role::Reader, None) if target.role() == Role::Owner => Ok(Permissions::default()),
        (Role::Reader, None) => Ok(target.permissions.clone()),
    }
}

/// Deletes the user `user_id` and, in the same transaction, every key they own (each with its
/// `api_key.deleted` entry), every invite they made that is not accepted yet (each with
/// `invite.deleted`) and every project membership (each with a project's `user.deleted`), then
/// `user.deleted`. Refused (409 `last_owner`) if no one could
/// run the organisation afterwards.
pub fn delete<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    user_id: &str,
    now: i64,
) -> Result<Change<()>, ApiError> {
    if !ids::plausible(user_id) {
        return Err(no_such_user(user_id));
    }
    let who = who.into();
    let deleted_keys = keep_an_admin(conn, now, Guarded::User("delete"), who.guarded(), |conn| {
        let caller = authorize(
            conn,
            who,
            Scope::UsersWrite,
            Target::UserAndKeys(user_id),
            now,
        )?;
        if user::find(conn, user_id)?.is_none() {
            return Err(no_such_user(user_id));
        }
        let actor = caller.actor();
        let owned = admin_api_key::ids_of_owner(conn, user_id)?;
        let hashes = admin_api_key::hashes_of(conn, &owned)?;
        let keys = admin_api_key::delete_of_owner(conn, user_id)?;
        for key_id in &keys {
            let event = AuditEvent::KeyDeleted {
                key_id: key_id.clone(),
            };
            audit::record(conn, now, &actor, &event)?;
        }
        // Their project keys go with them (the key rows reference the user).
        let project_keys = project_api_key::delete_of_user(conn, user_id)?;
        for invite_id in invite::delete_unaccepted_by(conn, user_id)? {
            audit::record(conn, now, &actor, &AuditEvent::InviteDeleted { invite_id })?;
        }
        let projects = project_user::delete_of_user(conn, user_id)?;
        for project_id in &projects {
            let event = AuditEvent::ProjectUserRemoved {
                project_id: project_id.clone(),
                user_id: user_id.to_owned(),
            };
            audit::record(conn, now, &actor, &event)?;
        }
        user::delete(conn, user_id)?;
        let event = AuditEvent::UserDeleted {
            user_id: user_id.to_owned(),
        };
        audit::record(conn, now, &actor, &event)?;
        let change = Change::new(()).invalidate(Invalidation::User(user_id.to_owned()));
        let change = projects.into_iter().fold(change, |change, project_id| {
            change.invalidate(Invalidation::Project(project_id))
        });
        let change = project_keys::deleted_keys(conn, &actor, project_keys, now, change)?;
        Ok((keys, hashes, change))
    })?;
    let (deleted_keys, hashes, change) = deleted_keys;
    let change = hashes.iter().fold(change, |change, hash| {
        change.invalidate(Invalidation::deleted(hash))
    });
    Ok(deleted_keys.into_iter().fold(change, |change, key_id| {
        change.invalidate(Invalidation::Key(key_id))
    }))
}
