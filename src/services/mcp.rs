//! MCP policies of keys: what a caller may grant, and the toggle that pauses or resumes a
//! key's MCP access.
//!
//! Policy:
//! - A new key's policy is the caller's own (as stored, a preset by name) with the request's
//!   fields over it; an update applies its fields over the key's own. Either way the caller's
//!   effective policy must cover the result's (403 `mcp_exceeds_caller`, naming the field):
//!   a caller grants only the MCP access it has. Pausing asks for nothing and is always
//!   allowed; resuming (and rotating, which hands the caller a copy) must be covered.
//! - The toggle needs the write scope of the key's kind (`admin_api_keys.write`, or
//!   `projects.write` for a project's keys, on a project that is not archived), is recorded
//!   as `api_key.updated` with the whole new policy, and drops the key from every cache. A
//!   toggle that changes nothing (setting the state the key is in) records nothing.

use crate::audit::{self, AuditEvent, KeyChangesRequested};
use crate::cache::Invalidation;
use crate::db::DbConnection;
use crate::domain::mcp::McpRequest;
use crate::domain::{McpPolicy, McpPresets, Scope};
use crate::error::ApiError;
use crate::ids;
use crate::models::admin_api_key::{self, KeyChanges, KeyWithOwner, RowLock};
use crate::models::project_api_key;
use crate::services::Change;
use crate::services::caller::{Caller, Principal, Target, authorize};
use crate::services::keys::no_such_key;
use crate::services::project_keys::no_such_project_key;
use crate::services::projects::active_project;

/// 403 unless the caller's effective policy covers `granted`'s (both as stored).
pub fn may_grant(
    caller: &Caller,
    granted: &McpPolicy,
    presets: &McpPresets,
) -> Result<(), ApiError> {
    let held = caller.mcp.effective(presets);
    match held.first_uncovered(&granted.effective(presets)) {
        None => Ok(()),
        Some(field) => Err(ApiError::Forbidden {
            message: format!(
                "A key cannot grant MCP access that its own MCP policy does not cover, and this \
                 one does not cover the requested `mcp.{field}`."
            ),
            code: "mcp_exceeds_caller".to_owned(),
        }),
    }
}

/// The policy of a key the caller makes: the request's fields over the caller's own policy,
/// covered by the caller's.
pub fn new_key_policy(caller: &Caller, request: &McpRequest) -> Result<McpPolicy, ApiError> {
    let policy = match &request.change {
        None => caller.mcp.clone(),
        Some(change) => change.apply(&caller.mcp),
    };
    may_grant(caller, &policy, &request.presets)?;
    Ok(policy)
}

/// The new policy of a key whose policy is now `current`, if the request changes it.
pub fn changed_policy(
    caller: &Caller,
    current: &McpPolicy,
    request: &McpRequest,
) -> Result<Option<McpPolicy>, ApiError> {
    let Some(change) = &request.change else {
        return Ok(None);
    };
    let policy = change.apply(current);
    if !change.only_pauses() {
        may_grant(caller, &policy, &request.presets)?;
    }
    Ok(Some(policy))
}

/// `current` toggled: flipped, or set to `active` when given. `None` when nothing changes.
fn toggled(
    caller: &Caller,
    current: &McpPolicy,
    active: Option<bool>,
    presets: &McpPresets,
) -> Result<Option<McpPolicy>, ApiError> {
    let active = active.unwrap_or(!current.active);
    if active == current.active {
        return Ok(None);
    }
    let policy = McpPolicy {
        active,
        ..current.clone()
    };
    if active {
        may_grant(caller, &policy, presets)?;
    }
    Ok(Some(policy))
}

/// Pauses or resumes the MCP access of the admin key `key_id` (see the module policy).
pub fn toggle_admin_key<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    key_id: &str,
    active: Option<bool>,
    presets: &McpPresets,
    now: i64,
) -> Result<Change<KeyWithOwner>, ApiError> {
    if !ids::plausible(key_id) {
        return Err(no_such_key(key_id));
    }
    let caller = authorize(
        conn,
        who,
        Scope::AdminApiKeysWrite,
        Target::Key(key_id),
        now,
    )?;
    let (target, _) = admin_api_key::find(conn, key_id)?.ok_or_else(|| no_such_key(key_id))?;
    if let Some(policy) = toggled(&caller, &target.mcp, active, presets)? {
        let changes = KeyChanges {
            mcp: Some(policy.clone()),
            ..KeyChanges::default()
        };
        admin_api_key::update(conn, key_id, &changes)?;
        let event = AuditEvent::KeyUpdated {
            key_id: key_id.to_owned(),
            changes: KeyChangesRequested {
                mcp: Some(policy),
                ..Default::default()
            },
        };
        audit::record(conn, now, &caller.actor(), &event)?;
    }
    let changed = admin_api_key::find(conn, key_id)?.ok_or_else(|| no_such_key(key_id))?;
    Ok(Change::new(changed).invalidate(Invalidation::Key(key_id.to_owned())))
}

/// Pauses or resumes the MCP access of the key `key_id` of `project_id`.
pub fn toggle_project_key<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    project_id: &str,
    key_id: &str,
    active: Option<bool>,
    presets: &McpPresets,
    now: i64,
) -> Result<Change<project_api_key::KeyWithOwner>, ApiError> {
    let caller = authorize(conn, who, Scope::ProjectsWrite, Target::Nothing, now)?;
    active_project(conn, project_id, RowLock::Share)?;
    if !ids::plausible(key_id) {
        return Err(no_such_project_key(key_id));
    }
    let found = project_api_key::find(conn, project_id, key_id)?
        .ok_or_else(|| no_such_project_key(key_id))?;
    if let Some(policy) = toggled(&caller, &found.key.mcp, active, presets)? {
        project_api_key::set_mcp(conn, project_id, key_id, &policy)?;
        let event = AuditEvent::ProjectKeyUpdated {
            project_id: project_id.to_owned(),
            key_id: key_id.to_owned(),
            changes: KeyChangesRequested {
                mcp: Some(policy),
                ..Default::default()
            },
        };
        audit::record(conn, now, &caller.actor(), &event)?;
    }
    let changed = project_api_key::find(conn, project_id, key_id)?
        .ok_or_else(|| no_such_project_key(key_id))?;
    Ok(Change::new(changed).invalidate(Invalidation::Key(key_id.to_owned())))
}
