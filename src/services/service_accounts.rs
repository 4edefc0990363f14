//! Service accounts: a project's non-human owners of keys (`sk-svcacct-…`), whose keys outlive
//! any member. Making, changing and deleting them, and issuing their keys.
//!
//! Policy: every change needs `projects.write` and a project that is not archived (400
//! `project_archived`). Deleting a service account deletes its keys in the same transaction:
//! they stop at once, here and (through the table triggers) on every replica. A service
//! account made with `create_service_account_only` has role `none` and no key, as upstream.
//!
//! Every function runs inside the transaction `services::write` opens and returns the
//! invalidations it implies.

use crate::audit::{self, AuditEvent, ServiceAccountChangesRequested};
use crate::cache::Invalidation;
use crate::db::DbConnection;
use crate::domain::{KeyName, Permissions, ProjectRole, Scope};
use crate::error::ApiError;
use crate::ids;
use crate::models::admin_api_key::RowLock;
use crate::models::project_api_key;
use crate::models::service_account::{self, ServiceAccount, ServiceAccountChanges};
use crate::services::Change;
use crate::services::caller::{Principal, Target, authorize};
use crate::services::project_keys::{self, IssuedProjectKey, NewKeyOwner, NewProjectKey};
use crate::services::projects::active_project;

/// The role of a service account made without a key (`create_service_account_only`).
pub const ROLE_NONE: &str = "none";
/// The name of the key made with a service account.
pub const FIRST_KEY_NAME: &str = "Secret Key";

/// A service account just made, with its first key unless it was made without one.
#[derive(Debug)]
pub struct Created {
    pub account: ServiceAccount,
    pub key: Option<IssuedProjectKey>,
}

/// What an update asks for; at least one field is set.
#[derive(Debug, Default)]
pub struct ServiceAccountUpdate {
    pub name: Option<KeyName>,
    pub role: Option<ProjectRole>,
}

/// The 404 for a service account id that is not one of the project's.
pub fn no_such_service_account(account_id: &str) -> ApiError {
    let message = match ids::ours(account_id) {
        Some(id) => format!("No service account with id `{id}` exists in this project."),
        None => "No service account of this project has this id (service account ids are \
                 `svc_acct_` and 24 letters or digits)."
            .to_owned(),
    };
    ApiError::NotFound {
        message,
        param: Some("service_account_id"),
    }
}

/// Makes a service account in `project_id` (`service_account.created`), with role `member`
/// and a first key (no scopes) expiring at `first_key`'s time (the organisation's default
/// lifetime; `Some(None)` never), or with `first_key` `None` with role `none` and no key.
pub fn create<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    project_id: &str,
    name: KeyName,
    first_key: Option<Option<i64>>,
    now: i64,
) -> Result<Change<Created>, ApiError> {
    let account_only = first_key.is_none();
    let caller = authorize(conn, who, Scope::ProjectsWrite, Target::Nothing, now)?;
    active_project(conn, project_id, RowLock::Share)?;
    let role = if account_only {
        ROLE_NONE
    } else {
        ProjectRole::Member.as_str()
    };
    let account = ServiceAccount {
        id: ids::random_id(ids::SERVICE_ACCOUNT),
        project_id: project_id.to_owned(),
        name: name.as_str().to_owned(),
        role: role.to_owned(),
        created_at: now,
    };
    service_account::insert(conn, &account)?;
    let actor = caller.actor();
    let event = AuditEvent::ServiceAccountCreated {
        project_id: project_id.to_owned(),
        service_account_id: account.id.clone(),
        role: role.to_owned(),
    };
    audit::record(conn, now, &actor, &event)?;
    if account_only {
        return Ok(Change::new(Created { account, key: None }));
    }
    let first = NewProjectKey {
        name: KeyName::parse("name", FIRST_KEY_NAME)?,
        scopes: Permissions::default(),
        expires_at: first_key.flatten(),
        mcp: Default::default(),
    };
    let owner = NewKeyOwner::ServiceAccount(&account.id);
    // The first key has the caller's own MCP policy, as any key made without one.
    let issued = project_keys::issue(conn, &actor, project_id, owner, &first, &caller.mcp, now)?;
    Ok(issued.map(|key| Created {
        account,
        key: Some(key),
    }))
}

/// Changes a service account's name or role (`service_account.updated`).
pub fn update<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    project_id: &str,
    account_id: &str,
    update: ServiceAccountUpdate,
    now: i64,
) -> Result<Change<ServiceAccount>, ApiError> {
    let caller = authorize(conn, who, Scope::ProjectsWrite, Target::Nothing, now)?;
    active_project(conn, project_id, RowLock::Share)?;
    if !ids::plausible(account_id) {
        return Err(no_such_service_account(account_id));
    }
    let changes = ServiceAccountChanges {
        name: update.name.as_ref().map(|name| name.as_str().to_owned()),
        role: update.role.map(|role| role.as_str().to_owned()),
    };
    let account = service_account::update(conn, project_id, account_id, &changes)?
        .ok_or_else(|| no_such_service_account(account_id))?;
    let event = AuditEvent::ServiceAccountUpdated {
        project_id: project_id.to_owned(),
        service_account_id: account_id.to_owned(),
        changes: ServiceAccountChangesRequested {
            role: update.role,
            name: update.name.map(|name| name.as_str().to_owned()),
        },
    };
    audit::record(conn, now, &caller.actor(), &event)?;
    Ok(Change::new(account).invalidate(Invalidation::Project(project_id.to_owned())))
}

/// Deletes a service account and its keys (`api_key.deleted` each, then
/// `service_account.deleted`): its keys stop at once.
pub fn delete<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    project_id: &str,
    account_id: &str,
    now: i64,
) -> Result<Change<()>, ApiError> {
    let caller = authorize(conn, who, Scope::ProjectsWrite, Target::Nothing, now)?;
    active_project(conn, project_id, RowLock::Share)?;
    if !ids::plausible(account_id)
        || service_account::lock(conn, project_id, account_id, RowLock::Update)?.is_none()
    {
        return Err(no_such_service_account(account_id));
    }
    let actor = caller.actor();
    let keys = project_api_key::delete_of_service_account(conn, account_id)?;
    let change = Change::new(()).invalidate(Invalidation::Project(project_id.to_owned()));
    let change = project_keys::deleted_keys(conn, &actor, keys, now, change)?;
    service_account::delete(conn, project_id, account_id)?;
    let event = AuditEvent::ServiceAccountDeleted {
        project_id: project_id.to_owned(),
        service_account_id: account_id.to_owned(),
    };
    audit::record(conn, now, &actor, &event)?;
    Ok(change)
}

/// Another key for the service account `account_id` (`api_key.created`), holding `new.scopes`
/// (each covered by the caller's own effective permissions).
pub fn create_key<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    project_id: &str,
    account_id: &str,
    new: NewProjectKey,
    now: i64,
) -> Result<Change<IssuedProjectKey>, ApiError> {
    let caller = authorize(conn, who, Scope::ProjectsWrite, Target::Nothing, now)?;
    active_project(conn, project_id, RowLock::Share)?;
    if !ids::plausible(account_id)
        || service_account::lock(conn, project_id, account_id, RowLock::Share)?.is_none()
    {
        return Err(no_such_service_account(account_id));
    }
    caller.may_grant_permissions(&new.scopes)?;
    let mcp = crate::services::mcp::new_key_policy(&caller, &new.mcp)?;
    let owner = NewKeyOwner::ServiceAccount(account_id);
    project_keys::issue(conn, &caller.actor(), project_id, owner, &new, &mcp, now)
}
