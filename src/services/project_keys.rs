//! Project API keys: issuing them (for a member, or for a service account), deleting them,
//! and the audit event of each change.
//!
//! Policy: a project key's scopes are free-form strings for the services behind the proxy
//! (the [`Permissions`] type), and the caller grants only what its own effective permissions
//! cover (the no-escalation rule of admin keys' permissions). Keys are made and deleted only
//! in a project that is not archived (400 `project_archived`). Like upstream, a service
//! account's key is deleted with its service account, not on its own.
//!
//! Every function runs inside the transaction `services::write` opens and returns the
//! invalidations it implies.

use crate::audit::{self, Actor, AuditEvent};
use crate::cache::Invalidation;
use crate::db::DbConnection;
use crate::domain::mcp::McpRequest;
use crate::domain::secret::{self, ApiKeySecret, KeyFormat};
use crate::domain::{KeyName, McpPolicy, Permissions, Scope};
use crate::error::ApiError;
use crate::ids;
use crate::models::admin_api_key::RowLock;
use crate::models::project_api_key::{self, KeyWithOwner, NewProjectApiKey};
use crate::models::user;
use crate::services::Change;
use crate::services::caller::{Principal, Target, authorize};
use crate::services::projects::active_project;
use crate::services::users::no_such_user_in;

/// A project key just issued: the secret (shown once) and the key as stored, with its owner.
#[derive(Debug)]
pub struct IssuedProjectKey {
    pub secret: ApiKeySecret,
    pub key: KeyWithOwner,
}

/// What a new key asks for; validated at the edge.
#[derive(Debug)]
pub struct NewProjectKey {
    pub name: KeyName,
    /// Each covered by the caller's own effective permissions.
    pub scopes: Permissions,
    /// When it expires, as the organisation's lifetime policy made it of the request.
    pub expires_at: Option<i64>,
    /// The MCP policy: fields left out are the caller's own (see `services::mcp`).
    pub mcp: McpRequest,
}

/// The owner of a key being made.
#[derive(Clone, Copy, Debug)]
pub enum NewKeyOwner<'a> {
    /// A member of the project: a `sk-proj-` key.
    User(&'a str),
    /// A service account of the project: a `sk-svcacct-` key.
    ServiceAccount(&'a str),
}

/// The 404 for a key id that is not a key of the project.
pub fn no_such_project_key(key_id: &str) -> ApiError {
    let message = match ids::ours(key_id) {
        Some(id) => format!("No API key with id `{id}` exists in this project."),
        None => "No API key of this project has this id (key ids are `key_` and 24 letters or \
                 digits)."
            .to_owned(),
    };
    ApiError::NotFound {
        message,
        param: Some("api_key_id"),
    }
}

/// A new key for the member `user_id` of `project_id` (our extension to upstream, which makes
/// member keys only in its dashboard): the user must exist (404), be a member of the project
/// (400 `not_a_project_member`) and be enabled (409 `user_disabled`). Needs `projects.write`.
pub fn create_for_member<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    project_id: &str,
    user_id: &str,
    new: NewProjectKey,
    now: i64,
) -> Result<Change<IssuedProjectKey>, ApiError> {
    if !ids::plausible(user_id) {
        return Err(no_such_user_in("user_id", user_id));
    }
    let caller = authorize(
        conn,
        who,
        Scope::ProjectsWrite,
        Target::NewKeyFor(user_id),
        now,
    )?;
    active_project(conn, project_id, RowLock::Share)?;
    let member = user::find(conn, user_id)?.ok_or_else(|| no_such_user_in("user_id", user_id))?;
    if !project_api_key::is_member(conn, project_id, user_id)? {
        return Err(ApiError::InvalidRequest {
            message: "This user is not a member of the project; add them to it first.".to_owned(),
            param: Some("user_id".to_owned()),
            code: Some("not_a_project_member"),
        });
    }
    if !member.enabled {
        return Err(ApiError::Conflict {
            message: "This user is disabled; a key for them would not work.".to_owned(),
            code: "user_disabled",
        });
    }
    caller.may_grant_permissions(&new.scopes)?;
    let mcp = crate::services::mcp::new_key_policy(&caller, &new.mcp)?;
    issue(
        conn,
        &caller.actor(),
        project_id,
        NewKeyOwner::User(user_id),
        &new,
        &mcp,
        now,
    )
}

/// The one way a project key comes to exist: draws a secret of the owner's format, stores the
/// key under its hash and records `api_key.created` with the project. The caller has checked
/// the project, the owner and the grant.
pub(crate) fn issue(
    conn: &mut DbConnection,
    actor: &Actor,
    project_id: &str,
    owner: NewKeyOwner<'_>,
    new: &NewProjectKey,
    mcp: &McpPolicy,
    now: i64,
) -> Result<Change<IssuedProjectKey>, ApiError> {
    let (format, owner_user_id, service_account_id) = match owner {
        NewKeyOwner::User(id) => (KeyFormat::Project, Some(id), None),
        NewKeyOwner::ServiceAccount(id) => (KeyFormat::ServiceAccount, None, Some(id)),
    };
    let secret = secret::generate_project_key(format);
    let key_id = ids::random_id(ids::KEY);
    project_api_key::insert(
        conn,
        &NewProjectApiKey {
            id: &key_id,
            project_id,
            name: new.name.as_str(),
            key_hash: &secret.hash(),
            redacted_value: &secret.redacted(),
            owner_user_id,
            service_account_id,
            scopes: &new.scopes,
            created_at: now,
            expires_at: new.expires_at,
            mcp,
        },
    )?;
    let event = AuditEvent::ProjectKeyCreated {
        project_id: project_id.to_owned(),
        key_id: key_id.clone(),
        name: new.name.as_str().to_owned(),
        scopes: new.scopes.clone(),
        mcp: mcp.clone(),
    };
    audit::record(conn, now, actor, &event)?;
    let key = project_api_key::find(conn, project_id, &key_id)?
        .ok_or_else(|| ApiError::Internal("a key just inserted is not there".into()))?;
    let created = Invalidation::created(&secret);
    Ok(Change::new(IssuedProjectKey { secret, key }).invalidate(created))
}

/// Deletes the key `key_id` of `project_id` (`api_key.deleted`); it stops working at once.
/// A service account's key is refused (400 `service_account_key`): as upstream, it goes with
/// its service account. Needs `projects.write`.
pub fn delete<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    project_id: &str,
    key_id: &str,
    now: i64,
) -> Result<Change<()>, ApiError> {
    let caller = authorize(conn, who, Scope::ProjectsWrite, Target::Nothing, now)?;
    active_project(conn, project_id, RowLock::Share)?;
    if !ids::plausible(key_id) {
        return Err(no_such_project_key(key_id));
    }
    let found = project_api_key::find(conn, project_id, key_id)?
        .ok_or_else(|| no_such_project_key(key_id))?;
    if found.key.service_account_id.is_some() {
        return Err(ApiError::InvalidRequest {
            message: "This key belongs to a service account; delete the service account to \
                      delete its keys."
                .to_owned(),
            param: Some("api_key_id".to_owned()),
            code: Some("service_account_key"),
        });
    }
    let hash = project_api_key::delete(conn, project_id, key_id)?
        .ok_or_else(|| no_such_project_key(key_id))?;
    let event = AuditEvent::ProjectKeyDeleted {
        project_id: project_id.to_owned(),
        key_id: key_id.to_owned(),
    };
    audit::record(conn, now, &caller.actor(), &event)?;
    Ok(Change::new(())
        .invalidate(Invalidation::deleted(&hash))
        .invalidate(Invalidation::Key(key_id.to_owned())))
}

/// Deletes keys already chosen (a service account's, a deleted user's): one `api_key.deleted`
/// each, with its project, and the invalidations that stop them at once.
pub(crate) fn deleted_keys(
    conn: &mut DbConnection,
    actor: &Actor,
    deleted: Vec<project_api_key::DeletedKey>,
    now: i64,
    change: Change<()>,
) -> Result<Change<()>, ApiError> {
    let mut change = change;
    for key in deleted {
        let event = AuditEvent::ProjectKeyDeleted {
            project_id: key.project_id,
            key_id: key.id.clone(),
        };
        audit::record(conn, now, actor, &event)?;
        change = change
            .invalidate(Invalidation::deleted(&key.key_hash))
            .invalidate(Invalidation::Key(key.id));
    }
    Ok(change)
}
