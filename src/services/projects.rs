//! Projects: creating, changing and archiving them, with their audit events.
//!
//! Archiving is one-way. An archived project stays readable (and listable with
//! `include_archived=true`) but nothing in it changes any more: its name, its members, its
//! rate limits (and, with the project keys, its service accounts and keys) are refused with
//! 400 `project_archived`, as upstream answers such changes. Archiving returns
//! `Invalidation::Project`: the project's keys stop working at once.
//!
//! Locks (PostgreSQL): after the caller's key and user rows (see `services::caller`), a
//! change of the project itself locks its row `FOR UPDATE`, a change inside it `FOR SHARE`
//! ([`active_project`]), so a change inside a project is ordered before or after its
//! archiving, never in between.

use crate::audit::{self, AuditEvent, ProjectChangesRequested};
use crate::cache::Invalidation;
use crate::db::DbConnection;
use crate::domain::{KeyName, Scope};
use crate::error::ApiError;
use crate::ids;
use crate::models::admin_api_key::RowLock;
use crate::models::project::{self, Project, ProjectChanges};
use crate::services::Change;
use crate::services::caller::{Principal, Target, authorize};

/// What a new project is made with.
#[derive(Debug)]
pub struct NewProject {
    pub name: KeyName,
    pub external_key_id: Option<KeyName>,
    /// One of upstream's residency names.
    pub residency: Option<&'static str>,
}

/// What a change of a project asks for; at least one field is set.
#[derive(Debug, Default)]
pub struct ProjectUpdate {
    pub name: Option<KeyName>,
    /// `Some(None)` clears it.
    pub external_key_id: Option<Option<KeyName>>,
}

/// The 404 for a project id that does not exist.
pub fn no_such_project(project_id: &str) -> ApiError {
    let message = match ids::ours(project_id) {
        Some(id) if id.starts_with(ids::PROJECT) => format!("No project with id `{id}` exists."),
        _ => {
            "No project has this id (project ids are `proj_` and 24 letters or digits).".to_owned()
        }
    };
    ApiError::NotFound {
        message,
        param: Some("project_id"),
    }
}

/// The refusal of a change to an archived project (400, as upstream answers it: the request
/// cannot succeed however often it is retried, and no later change of state will make it).
pub fn archived(project_id: &str) -> ApiError {
    let subject = match ids::ours(project_id) {
        Some(id) => format!("The project `{id}`"),
        None => "This project".to_owned(),
    };
    ApiError::InvalidRequest {
        message: format!(
            "{subject} is archived: it can be read but no longer changed, and neither can its \
             members, rate limits, service accounts or keys."
        ),
        param: Some("project_id".to_owned()),
        code: Some("project_archived"),
    }
}

/// Reads the project `project_id` for a read (404 if there is none).
pub fn existing(conn: &mut DbConnection, project_id: &str) -> Result<Project, ApiError> {
    if !ids::plausible(project_id) {
        return Err(no_such_project(project_id));
    }
    project::find(conn, project_id)?.ok_or_else(|| no_such_project(project_id))
}

/// Locks the project `project_id` for a change inside it and returns it: 404 if there is
/// none, 400 `project_archived` if it is archived. Call after `authorize`.
pub fn active_project(
    conn: &mut DbConnection,
    project_id: &str,
    lock: RowLock,
) -> Result<Project, ApiError> {
    if !ids::plausible(project_id) {
        return Err(no_such_project(project_id));
    }
    let found =
        project::lock(conn, project_id, lock)?.ok_or_else(|| no_such_project(project_id))?;
    if found.is_archived() {
        return Err(archived(project_id));
    }
    Ok(found)
}

/// Makes a project (`project.created`).
pub fn create<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    new: NewProject,
    now: i64,
) -> Result<Change<Project>, ApiError> {
    let caller = authorize(conn, who, Scope::ProjectsWrite, Target::Nothing, now)?;
    let made = Project {
        id: ids::random_id(ids::PROJECT),
        name: new.name.into_string(),
        created_at: now,
        archived_at: None,
        external_key_id: new.external_key_id.map(KeyName::into_string),
        residency: new.residency.map(str::to_owned),
    };
    project::insert(conn, &made)?;
    let event = AuditEvent::ProjectCreated {
        project_id: made.id.clone(),
        name: made.name.clone(),
    };
    audit::record(conn, now, &caller.actor(), &event)?;
    Ok(Change::new(made))
}

/// Changes the name or external key id of an active project (`project.updated`).
pub fn update<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    project_id: &str,
    update: ProjectUpdate,
    now: i64,
) -> Result<Change<Project>, ApiError> {
    let caller = authorize(conn, who, Scope::ProjectsWrite, Target::Nothing, now)?;
    let mut found = active_project(conn, project_id, RowLock::Update)?;
    let changes = ProjectChanges {
        name: update.name.map(KeyName::into_string),
        external_key_id: update
            .external_key_id
            .map(|id| id.map(KeyName::into_string)),
    };
    project::update(conn, project_id, &changes)?;
    let event = AuditEvent::ProjectUpdated {
        project_id: project_id.to_owned(),
        changes: ProjectChangesRequested {
            title: changes.name.clone(),
            external_key_id: changes.external_key_id.clone(),
        },
    };
    audit::record(conn, now, &caller.actor(), &event)?;
    if let Some(name) = changes.name {
        found.name = name;
    }
    if let Some(external_key_id) = changes.external_key_id {
        found.external_key_id = external_key_id;
    }
    Ok(Change::new(found))
}

/// Archives a project (`project.archived`): its keys stop working at once. Archiving an
/// archived project changes nothing and records nothing (the answer is the project as it
/// is), so a retried archive succeeds.
pub fn archive<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    project_id: &str,
    now: i64,
) -> Result<Change<Project>, ApiError> {
    if !ids::plausible(project_id) {
        return Err(no_such_project(project_id));
    }
    let caller = authorize(conn, who, Scope::ProjectsWrite, Target::Nothing, now)?;
    let mut found = project::lock(conn, project_id, RowLock::Update)?
        .ok_or_else(|| no_such_project(project_id))?;
    if found.is_archived() {
        return Ok(Change::new(found));
    }
    project::archive(conn, project_id, now)?;
    let event = AuditEvent::ProjectArchived {
        project_id: project_id.to_owned(),
    };
    audit::record(conn, now, &caller.actor(), &event)?;
    found.archived_at = Some(now);
    Ok(Change::new(found).invalidate(Invalidation::Project(project_id.to_owned())))
}
