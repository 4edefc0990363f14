//! Project members: adding organisation members to a project, changing their project role and
//! removing them, with their audit events (upstream's `user.added`, `user.updated` and
//! `user.deleted`, scoped to the project).
//!
//! Only an existing, enabled member of the organisation can be added. Removing a member or
//! changing their role returns `Invalidation::Project`: who may use the project's keys changed.
//! Nothing changes in an archived project (400 `project_archived`, see `services::projects`).

use crate::audit::{self, AuditEvent};
use crate::cache::Invalidation;
use crate::db::DbConnection;
use crate::domain::{Email, ProjectRole, Scope};
use crate::error::ApiError;
use crate::ids;
use crate::models::admin_api_key::RowLock;
use crate::models::project_user::{self, ProjectUser};
use crate::models::user::{self, User};
use crate::services::Change;
use crate::services::caller::{Principal, Target, authorize};
use crate::services::projects::active_project;
use crate::services::users::no_such_user;

/// Who to add: an organisation member named by id or by email.
#[derive(Debug)]
pub enum Member {
    Id(String),
    Email(Email),
}

/// The 404 for a user who is not a member of the project.
pub fn not_a_member(user_id: &str) -> ApiError {
    let message = match ids::ours(user_id) {
        Some(id) => format!("The user `{id}` is not a member of this project."),
        None => "No member of this project has this id (user ids are `user_` and 24 letters or \
                 digits)."
            .to_owned(),
    };
    ApiError::NotFound {
        message,
        param: Some("user_id"),
    }
}

/// Adds an organisation member to the active project `project_id` with `role`
/// (`user.added`). 404 if no such member (or project) exists, 409 `user_disabled` if the
/// member is disabled, 409 `already_member` if they belong to the project already.
pub fn add<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    project_id: &str,
    member: Member,
    role: ProjectRole,
    now: i64,
) -> Result<Change<(ProjectUser, User)>, ApiError> {
    let who = who.into();
    let user = find_member(conn, &member)?;
    let caller = authorize(
        conn,
        who,
        Scope::ProjectsWrite,
        Target::NewKeyFor(&user.id),
        now,
    )?;
    active_project(conn, project_id, RowLock::Share)?;
    // Read again under the lock `authorize` took on the user.
    let user = user::find(conn, &user.id)?.ok_or_else(|| no_such_user(&user.id))?;
    if !user.enabled {
        return Err(ApiError::Conflict {
            message: "This user is disabled; enable them before adding them to a project."
                .to_owned(),
            code: "user_disabled",
        });
    }
    if project_user::find(conn, project_id, &user.id)?.is_some() {
        return Err(ApiError::Conflict {
            message: "This user is a member of the project already; change their role instead."
                .to_owned(),
            code: "already_member",
        });
    }
    let added = ProjectUser {
        project_id: project_id.to_owned(),
        user_id: user.id.clone(),
        role: role.as_str().to_owned(),
        added_at: now,
    };
    project_user::insert(conn, &added)?;
    let event = AuditEvent::ProjectUserAdded {
        project_id: project_id.to_owned(),
        user_id: user.id.clone(),
        role,
    };
    audit::record(conn, now, &caller.actor(), &event)?;
    // A member added back regains their keys: a cached "no access" answer must go.
    Ok(Change::new((added, user)).invalidate(Invalidation::Project(project_id.to_owned())))
}

fn find_member(conn: &mut DbConnection, member: &Member) -> Result<User, ApiError> {
    match member {
        Member::Id(id) => {
            if !ids::plausible(id) {
                return Err(no_such_user(id));
            }
            user::find(conn, id)?.ok_or_else(|| no_such_user(id))
        }
        Member::Email(email) => {
            let found = user::list_page(conn, None, 1, &[email.as_str().to_owned()])?;
            found.into_iter().next().ok_or_else(|| ApiError::NotFound {
                message: "No member of the organisation has this email address; invite them \
                          first."
                    .to_owned(),
                param: Some("email"),
            })
        }
    }
}

/// Changes the project role of the member `user_id` (`user.updated`).
pub fn set_role<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    project_id: &str,
    user_id: &str,
    role: ProjectRole,
    now: i64,
) -> Result<Change<(ProjectUser, User)>, ApiError> {
    let caller = authorize(conn, who, Scope::ProjectsWrite, Target::Nothing, now)?;
    active_project(conn, project_id, RowLock::Share)?;
    let (mut member, user) = member_of(conn, project_id, user_id)?;
    project_user::set_role(conn, project_id, user_id, role.as_str())?;
    let event = AuditEvent::ProjectUserUpdated {
        project_id: project_id.to_owned(),
        user_id: user_id.to_owned(),
        role,
    };
    audit::record(conn, now, &caller.actor(), &event)?;
    member.role = role.as_str().to_owned();
    Ok(Change::new((member, user)).invalidate(Invalidation::Project(project_id.to_owned())))
}

/// Removes the member `user_id` from the project (`user.deleted`): their project keys stay
/// but stop working.
pub fn remove<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    project_id: &str,
    user_id: &str,
    now: i64,
) -> Result<Change<()>, ApiError> {
    let caller = authorize(conn, who, Scope::ProjectsWrite, Target::Nothing, now)?;
    active_project(conn, project_id, RowLock::Share)?;
    member_of(conn, project_id, user_id)?;
    project_user::delete(conn, project_id, user_id)?;
    let event = AuditEvent::ProjectUserRemoved {
        project_id: project_id.to_owned(),
        user_id: user_id.to_owned(),
    };
    audit::record(conn, now, &caller.actor(), &event)?;
    Ok(Change::new(()).invalidate(Invalidation::Project(project_id.to_owned())))
}

/// The membership of `user_id` in `project_id`, or the 404 saying they are not a member.
pub fn member_of(
    conn: &mut DbConnection,
    project_id: &str,
    user_id: &str,
) -> Result<(ProjectUser, User), ApiError> {
    if !ids::plausible(user_id) {
        return Err(not_a_member(user_id));
    }
    project_user::find(conn, project_id, user_id)?.ok_or_else(|| not_a_member(user_id))
}
